"""The summary metrics, declared once: one :class:`SummaryMetric` entry per metric.

The cell summary (:func:`benchmark.evaluation.summarize`), the record validation and frames
of the report, the report's table columns and column notes, the HTML and the "Metric
definitions" section of BENCHMARKS.md all iterate :data:`SUMMARY_METRICS` (in registration
order, which is the order of the summary, the frames and the table columns). Adding a metric
is one entry plus one registration line.

Contract of an entry (``register_metric(SummaryMetric(...))``):

* ``key``: the summary / frame column key (unique). ``source`` says who computes it:
  ``"summary"`` — :attr:`compute` from the cell's per-split metrics (:class:`CellMetrics`),
  stored in ``record["summary"]``; ``"rgn"`` — read from ``record["rgn"][key]``;
  ``"report"`` — computed by the report across runs (effective robustness).
* ``unit``: ``"ap"`` (a fraction in [0, 1], -1 = no ground truth), ``"ratio"``,
  ``"points"`` (a difference of APs) or ``"rgn"``; records are validated by it.
* ``per``: ``""`` a number; ``"domain"`` a ``{split: value}`` mapping (columns
  ``<prefix><split>``); ``"condition"`` a ``{corruption: {severity: value}}`` mapping
  (columns ``<prefix><corruption>/<severity>``).
* ``label`` (column label; for ``per="domain"`` a template with ``{domain}``), ``fmt``
  (scale / digits / sign of a cell), ``higher_is_better``, ``axis_label`` (plots, ER text,
  headline; default ``label``).
* ``definition``: the markdown bullet in "Metric definitions" (without ``- ``; continuation
  lines indented by two spaces; ``{baseline_recipe}`` is filled in). Metrics defined together
  share one text, which is rendered once; ``group`` (:data:`GROUPS`) orders the bullets.
* ``show``: the :class:`benchmark.families.Family` flags that must all hold for the report to
  show a column (``"recorded"``: some run of the family has a value for a metric of the same
  group); ``None``: no column in the family table. ``note`` is the column note (``{label}``,
  ``{what}`` — the summary protocol's AP — and ``{split}`` are filled in); ``tagged``: the
  value is an AP in the summary's protocol and the label carries it for VOC families;
  ``alt_protocol``: VOC families also show it in the other protocol.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from benchmark.evaluation.coco import DEFINITION as COCO_DEFINITION
from benchmark.evaluation.robustness import corruption_summary, ood_summary
from benchmark.evaluation.voc import DEFINITION as VOC_DEFINITION
from benchmark.registry import Registry
from benchmark.spec import RunSpec

GROUPS = ("ap", "corruption", "ood", "er", "rgn")  # order of the definitions' bullets
SOURCES = ("summary", "rgn", "report")
UNITS = ("ap", "ratio", "points", "rgn")
PER = ("", "domain", "condition")
# summary protocol → (short name, what its AP is)
SUMMARY_PROTOCOLS: dict[str, tuple[str, str]] = {
    "coco": ("COCO", "COCO AP@[.5:.95] (101-point)"),
    "voc": ("VOC", "VOC-protocol AP@[.5:.95] (11-point on VOC2007 test, area under the "
                   "curve on the other splits)"),
}


@dataclass(frozen=True)
class Format:
    """How a value is shown: ``value · scale`` with ``digits`` decimals (``+`` if signed)."""

    scale: float = 100.0
    digits: int = 1
    signed: bool = False

    def __call__(self, value: Any) -> str:
        """One value; "—" when missing or not finite; never "-0.0"."""
        try:
            v = float(value) * self.scale
        except (TypeError, ValueError):
            return "—"
        if not math.isfinite(v):
            return "—"
        if round(v, self.digits) == 0:
            v = 0.0
        return f"{v:{'+' if self.signed else ''}.{self.digits}f}"


class CellMetrics:
    """One cell's per-split metrics, read the way its summary reads them: the headline value of
    a split is its VOC-style AP where computed (the Pascal family), else COCO's."""

    def __init__(self, spec: RunSpec, metrics: Mapping[str, Mapping[str, Any]]) -> None:
        self.spec = spec
        self.metrics = metrics

    def ap(self, split: str, key: str = "AP") -> float:
        m = self.metrics[split]
        return m["voc"][key] if "voc" in m else m[key]

    @cached_property
    def id_ap(self) -> float:
        return self.ap(self.spec.id_split)

    @cached_property
    def ood(self) -> dict[str, float]:
        return {s: self.ap(s) for s in self.spec.ood_splits}

    @cached_property
    def ood_summary(self) -> dict[str, float | None] | None:
        return ood_summary(self.id_ap, self.ood) if self.ood else None

    @cached_property
    def corruption_aps(self) -> dict[tuple[str, int], float] | None:
        if self.spec.corruption is None:
            return None
        return {(c, sev): self.ap(name) for name, c, sev in self.spec.corrupted_splits}

    @cached_property
    def corruption(self) -> dict[str, Any] | None:
        if self.spec.corruption is None or self.corruption_aps is None:
            return None
        clean = self.ap(self.spec.corruption.base)
        return corruption_summary(clean, self.corruption_aps, self.spec.corruption.names)


@dataclass(frozen=True)
class SummaryMetric:
    key: str
    label: str
    definition: str
    group: str
    unit: str
    source: str = "summary"
    compute: Callable[[CellMetrics], Any] | None = None
    fmt: Format = Format()
    higher_is_better: bool = True
    axis_label: str = ""
    per: str = ""
    prefix: str = ""
    show: tuple[str, ...] | None = None
    note: str = ""
    tagged: bool = False
    alt_protocol: bool = False

    def __post_init__(self) -> None:
        for name, value, allowed in (("group", self.group, GROUPS), ("unit", self.unit, UNITS),
                                     ("source", self.source, SOURCES), ("per", self.per, PER)):
            if value not in allowed:
                raise ValueError(f"metric {self.key!r}: {name}={value!r}: expected one of "
                                 f"{', '.join(map(repr, allowed))}")
        if (self.source == "summary") != (self.compute is not None):
            raise ValueError(f"metric {self.key!r}: compute is required for (and only for) "
                             "source='summary'")
        if bool(self.per) != bool(self.prefix):
            raise ValueError(f"metric {self.key!r}: per and prefix go together")
        if not self.definition.strip():
            raise ValueError(f"metric {self.key!r}: empty definition")

    @property
    def axis(self) -> str:
        return self.axis_label or self.label

    def columns(self, value: Any) -> dict[str, Any]:
        """A per-domain / per-condition value → ``{column: value}`` (``{}`` for None)."""
        out: dict[str, Any] = {}
        for k, v in (value or {}).items():
            if self.per == "condition":
                for sev, x in (v or {}).items():
                    out[f"{self.prefix}{k}/{int(sev)}"] = x
            else:
                out[f"{self.prefix}{k}"] = v
        return out


SUMMARY_METRICS: Registry[SummaryMetric] = Registry("summary metric")


def register_metric(metric: SummaryMetric) -> SummaryMetric:
    """``SUMMARY_METRICS.register(metric.key)(metric)``: one line per metric."""
    return SUMMARY_METRICS.register(metric.key)(metric)


def metric_entries(source: str | None = None, *, scalar: bool | None = None
                    ) -> list[SummaryMetric]:
    """The entries in order, optionally only those of one ``source`` / only numbers."""
    return [m for m in SUMMARY_METRICS.in_order()
            if (source is None or m.source == source)
            and (scalar is None or scalar == (m.per == ""))]


def definitions(baseline_recipe: str) -> list[str]:
    """The "Metric definitions" bullets: the AP protocols, then each group's metrics, every
    distinct text once."""
    texts = [COCO_DEFINITION, VOC_DEFINITION]
    for group in GROUPS:
        texts += [m.definition for m in SUMMARY_METRICS.in_order() if m.group == group]
    out: list[str] = []
    for t in texts:
        t = t.replace("{baseline_recipe}", baseline_recipe)
        if t not in out:
            out.append(t)
    return out


_CORR_DEFINITION = """\
**P, mPC, rPC** (Michaelis et al.): P = AP on the clean split; mPC = mean AP over the
  corruption × severity conditions evaluated (COCO-C: the 15 benchmark corruptions × severities
  1–5); rPC = mPC / P, in percent. This is the ratio of means, the form of the COCO and
  Cityscapes numbers (`robustness_eval.py`, `get_coco_style_results`)."""

_CORR_PER_CLASS_DEFINITION = """\
**P50, mPC50, rPC/class** (Pascal-C as Michaelis et al. compute it,
  `robustness_eval.py`, `get_voc_style_results`): per class c, P_c = VOC AP50 on the clean
  split and mPC_c = its mean over the corruption × severity conditions; P50 = mean_c P_c,
  mPC50 = mean_c mPC_c, rPC/class = mean_c (mPC_c / P_c), in percent — the mean of per-class
  ratios, not the ratio of means. Classes without ground truth, or with P_c = 0 (where the
  original divides by zero), are left out of the means."""

_OOD_DEFINITION = """\
**OOD mean**: the unweighted mean AP over the family's OOD splits. **gap** = ID AP − OOD
  mean, in AP points."""

_MASK_DEFINITION = """\
**ID mask AP, OOD mean mask AP** (Mask R-CNN engines, the Cityscapes protocol): COCO's
  AP@[.5:.95] of the instance masks (pycocotools ``iouType="segm"``, masks binarised at 0.5 as
  detectron2 pastes them); the box APs stay the OOD comparison."""

_ER_DEFINITION = """\
**ER** (effective robustness, Taori et al.): a least-squares line is fitted through
  (logit ID AP, logit OOD AP) of the baseline rows (recipe `{baseline_recipe}`,
  one point per row, its seed means; logits clipped at 10⁻⁶); a run's ER is its OOD AP minus
  the line's prediction at its ID AP mapped back with the sigmoid, in AP points; cells are
  mean ± std over seeds. For COCO-C, ID = P and OOD = mPC. The ID-vs-OOD plots draw the line
  and a 95% band from refitting on bootstrap resamples of the baseline rows."""

_RGN_DEFINITION = """\
**rgn** (Relative Gradient Norm, the code definition): at a fixed checkpoint (the DP model),
  in train mode, over min(100, |train|/batch) batches: zero the gradients, backward the total
  detection loss, and for every trainable backbone tensor W with gradient G accumulate
  `|G| / (|W| + 1e-8)` element-wise, where for 4-D conv kernels |G| and |W| are first summed
  over the two spatial dimensions; divide by the number of batches. Per tensor: the mean of
  that map. Model-level `rgn`: the unweighted mean over tensors."""

_RGN_L2_DEFINITION = """\
**rgn_l2** (the paper's prose definition): per tensor the per-layer ratio ‖G‖₂ / ‖W‖₂ of
  gradient and weight L2 norms, averaged over the same batches; model level the unweighted
  mean over tensors."""


def _mean_ap50_ood(c: CellMetrics) -> float | None:
    return sum(c.ap(s, "AP50") for s in c.ood) / len(c.ood) if c.ood else None


def _mask_ap(split: str) -> Callable[[CellMetrics], float | None]:
    """Mask AP of a split: recorded by Mask R-CNN engines only (None otherwise)."""

    def get(c: CellMetrics) -> float | None:
        return c.metrics[getattr(c.spec, split)].get("mask_AP")

    return get


def _ood_mask_mean(c: CellMetrics) -> float | None:
    values = [c.metrics[s].get("mask_AP") for s in c.spec.ood_splits]
    return None if not values or None in values else sum(values) / len(values)


def _corruption_table(c: CellMetrics) -> dict[str, dict[str, float]] | None:
    if c.corruption_aps is None:
        return None
    table: dict[str, dict[str, float]] = {}
    for (name, sev), ap in c.corruption_aps.items():
        table.setdefault(name, {})[str(sev)] = ap
    return table


def _per_class(c: CellMetrics) -> dict[str, tuple[float, float]] | None:
    """{class: (P_c, mPC_c)} in VOC AP50, for classes with ground truth; None when the cell
    has no corruption sweep or its splits carry no per-class VOC AP."""
    if c.spec.corruption is None:
        return None
    per_split = [c.metrics[name].get("voc", {}).get("per_class_ap50")
                 for name, _, _ in c.spec.corrupted_splits]
    clean = c.metrics[c.spec.corruption.base].get("voc", {}).get("per_class_ap50")
    if clean is None or not per_split or any(p is None for p in per_split):
        return None
    out = {}
    for cls, p in clean.items():
        values = [split[cls] for split in per_split]
        if p is not None and all(v is not None for v in values):
            out[cls] = (p, sum(values) / len(values))
    return out or None


def _p50(c: CellMetrics) -> float | None:
    pc = _per_class(c)
    return None if pc is None else sum(p for p, _ in pc.values()) / len(pc)


def _mpc50(c: CellMetrics) -> float | None:
    pc = _per_class(c)
    return None if pc is None else sum(m for _, m in pc.values()) / len(pc)


def _rpc_per_class(c: CellMetrics) -> float | None:
    pc = _per_class(c)
    ratios = [m / p for p, m in (pc or {}).values() if p > 0]
    return sum(ratios) / len(ratios) if ratios else None


def _part(summary: str, key: str) -> Callable[[CellMetrics], Any]:
    def get(c: CellMetrics) -> Any:
        part = getattr(c, summary)
        return None if part is None else part[key]

    return get


_RGN = Format(scale=1.0, digits=3)
_NOTE = "{label}: {what}"

register_metric(SummaryMetric(
    "id_ap", "ID AP", COCO_DEFINITION, "ap", "ap", compute=lambda c: c.id_ap,
    show=("ood",), note=_NOTE + " on the ID test split", tagged=True, alt_protocol=True))
register_metric(SummaryMetric(
    "id_ap50", "ID AP50", COCO_DEFINITION, "ap", "ap",
    compute=lambda c: c.ap(c.spec.id_split, "AP50"),
    show=("ood", "id_ap50"), note="{label}: AP at IoU 0.50", tagged=True))
register_metric(SummaryMetric(
    "ood", "{domain} AP", COCO_DEFINITION, "ap", "ap", compute=lambda c: c.ood or None,
    per="domain", prefix="ood/", show=("ood",), note=_NOTE + " on `{split}`", tagged=True))
register_metric(SummaryMetric(
    "ood_mean", "OOD mean", _OOD_DEFINITION, "ood", "ap", compute=_part("ood_summary", "ood_mean"),
    axis_label="OOD mean AP", show=("ood",), note="{label}: unweighted mean of the OOD APs",
    tagged=True, alt_protocol=True))
register_metric(SummaryMetric(
    "ood_mean_ap50", "OOD mean AP50", _OOD_DEFINITION, "ood", "ap", compute=_mean_ap50_ood))
register_metric(SummaryMetric(
    "gap", "gap", _OOD_DEFINITION, "ood", "points", compute=_part("ood_summary", "gap"),
    higher_is_better=False, show=("ood",), note="{label}: ID AP − OOD mean, AP points"))
register_metric(SummaryMetric(
    "id_mask_ap", "ID mask AP", _MASK_DEFINITION, "ap", "ap", compute=_mask_ap("id_split"),
    show=("masks",), note="{label}: COCO mask AP@[.5:.95] on the ID test split"))
register_metric(SummaryMetric(
    "ood_mask_mean", "OOD mean mask AP", _MASK_DEFINITION, "ood", "ap",
    compute=_ood_mask_mean, show=("masks", "ood"),
    note="{label}: unweighted mean of the OOD splits' mask APs"))
register_metric(SummaryMetric(
    "P", "P", _CORR_DEFINITION, "corruption", "ap", compute=_part("corruption", "P"),
    axis_label="P (clean AP)", show=("corruption", "recorded"),
    note=_NOTE + " on the clean corruption base split", tagged=True))
register_metric(SummaryMetric(
    "mPC", "mPC", _CORR_DEFINITION, "corruption", "ap", compute=_part("corruption", "mPC"),
    show=("corruption", "recorded"),
    note="{label}: mean AP over the corruption × severity conditions", tagged=True))
register_metric(SummaryMetric(
    "rPC", "rPC (%)", _CORR_DEFINITION, "corruption", "ratio",
    compute=_part("corruption", "rPC"), show=("corruption", "recorded"),
    note="rPC: mPC / P, percent"))
register_metric(SummaryMetric(
    "P50", "P50", _CORR_PER_CLASS_DEFINITION, "corruption", "ap", compute=_p50,
    show=("voc", "corruption", "recorded"),
    note="{label}: clean VOC AP50, mean over classes (Pascal-C)"))
register_metric(SummaryMetric(
    "mPC50", "mPC50", _CORR_PER_CLASS_DEFINITION, "corruption", "ap", compute=_mpc50,
    show=("voc", "corruption", "recorded"),
    note="{label}: VOC AP50 under corruption, mean over conditions and classes"))
register_metric(SummaryMetric(
    "rPC_class", "rPC/class (%)", _CORR_PER_CLASS_DEFINITION, "corruption", "ratio",
    compute=_rpc_per_class, show=("voc", "corruption", "recorded"),
    note="rPC/class: mean over classes of mPC_c / P_c, percent (Pascal-C)"))
register_metric(SummaryMetric(
    "corruption", "AP", _CORR_DEFINITION, "corruption", "ap", compute=_corruption_table,
    per="condition", prefix="corr/"))
register_metric(SummaryMetric(
    "er", "ER", _ER_DEFINITION, "er", "points", source="report", fmt=Format(signed=True),
    show=()))  # its note is written with the fit
register_metric(SummaryMetric(
    "rgn", "RGN", _RGN_DEFINITION, "rgn", "rgn", source="rgn", fmt=_RGN, higher_is_better=False,
    show=(), note="{label}: `rgn`, the code definition (see definitions)"))
register_metric(SummaryMetric(
    "rgn_l2", "RGN (L2)", _RGN_L2_DEFINITION, "rgn", "rgn", source="rgn", fmt=_RGN,
    higher_is_better=False, show=("rgn_l2",), note="{label}: `rgn_l2`, per-layer ‖G‖₂/‖W‖₂"))
