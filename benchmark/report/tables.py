"""A benchmark family's table: its runs aggregated into ranked rows, columns, ER and notes.

:class:`FamilyTable` reads everything family-specific from :data:`benchmark.families.FAMILIES`
and every column from the summary-metric table
(:data:`benchmark.evaluation.summary_metrics.SUMMARY_METRICS`). It is over 400 lines because
ranking, variants, ER and the baseline index share one rows frame; the family's other
sections (published rows, intervals, figures) live in their own modules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchmark.evaluation.robustness import effective_robustness, fit_logit_line
from benchmark.evaluation.summary_metrics import (
    SUMMARY_METRICS,
    SUMMARY_PROTOCOLS,
    Format,
    SummaryMetric,
    metric_entries,
)
from benchmark.families import FAMILIES, SPLIT_ROLES, Family
from benchmark.report.aggregation import aggregate, counts, format_cell, short_hash
from benchmark.report.names import display_names
from benchmark.report.options import Options


def family_for_report(name: str) -> Family:
    """The registered family, or generic columns for a family the report does not know."""
    if name in FAMILIES:
        return FAMILIES.get(name)
    return Family(name, f"{name} (unrecognised family)", "A family the report does not "
                  "know; shown with the generic columns.", SPLIT_ROLES, "ood_mean", "id_ap",
                  "ood_mean", id_ap50=True, rgn_l2=True)


@dataclass(frozen=True)
class Column:
    key: str  # rows-frame column (without |mean / |std / |n)
    label: str
    fmt: Format
    note: str = ""  # the column's note under the table ("" none)


def _value_columns() -> set[str]:
    """Run columns aggregated into rows: every scalar metric, ID AP75, both protocols'."""
    keys = {m.key for m in metric_entries(scalar=True)} | {"id_ap75"}
    return keys | {f"{p}_{m.key}" for p in SUMMARY_PROTOCOLS for m in metric_entries()
                   if m.alt_protocol}


_VALUE_PREFIXES = ("voc_ood/", "coco_ood/", *(m.prefix for m in SUMMARY_METRICS.in_order()
                                              if m.prefix))


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    text_columns: int = 3  # left-aligned leading columns; the rest are numbers
    tooltips: list[str] = field(default_factory=list)  # per column (HTML); "" none
    row_titles: list[str] = field(default_factory=list)  # per row (HTML): the full spec

    def tooltip(self, i: int) -> str:
        return self.tooltips[i] if i < len(self.tooltips) else ""

    def row_title(self, i: int) -> str:
        return self.row_titles[i] if i < len(self.row_titles) else ""

    @property
    def align(self) -> list[str]:
        return ["---" if i < self.text_columns else "---:" for i in range(len(self.columns))]

    @property
    def md(self) -> str:
        """The table as GitHub markdown (no trailing newline)."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "|".join(self.align) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def esc(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def fmt_ap(v: Any, digits: int = 1, signed: bool = False) -> str:
    """An AP (or AP difference) in percent; "—" when missing."""
    return Format(100.0, digits, signed)(v)


def _order_domains(splits: Sequence[str], preferred: Sequence[str]) -> list[str]:
    def rank(s: str) -> tuple[int, str]:
        low = s.lower()
        for i, p in enumerate(preferred):
            if p in low:
                return i, s
        return len(preferred), s

    return sorted(splits, key=rank)


def _domain_label(split: str, fam: Family) -> str:
    low = split.lower()
    for p in fam.domains:
        if p in low:
            return p.capitalize() if p != "bdd" else "BDD"
    return split


def _col_values(frame: pd.DataFrame, prefix: str) -> list[str]:
    return sorted(c[len(prefix):] for c in frame.columns if c.startswith(prefix))


# ---- family tables ----------------------------------------------------------------------------
class FamilyTable:
    """Aggregates one family's runs into ranked rows, ER, published comparisons and stats."""

    def __init__(self, name: str, runs: pd.DataFrame, options: Options) -> None:
        self.fam = family_for_report(name)
        self.options = options
        self.runs = runs.dropna(axis=1, how="all").copy()
        self.notes: list[str] = []
        self._columns()
        self._effective_robustness()
        if self.fit is None:
            self.columns = [c for c in self.columns if c.key != "er"]
        self.rows = self._rows()
        self.corr_columns = sorted(c for c in self.runs.columns if c.startswith("corr/"))
        keep = ["fingerprint", "record_sha256", "id_split", "ood_splits", "corruption_base",
                "corruption_channel_order", "predictions", "datasets", *self.corr_columns]
        self.run_dicts = {d["fingerprint"]: d for d in self.runs[keep].to_dict("records")}
        self._baselines = self._baseline_index()

    @property
    def er_x_label(self) -> str:
        return SUMMARY_METRICS.get(self.fam.er_x).axis

    @property
    def er_y_label(self) -> str:
        return SUMMARY_METRICS.get(self.fam.er_y).axis

    @property
    def headline_label(self) -> str:
        return SUMMARY_METRICS.get(self.fam.headline).axis

    # columns present in this family's records, in display order
    def _columns(self) -> None:
        fam, runs = self.fam, self.runs
        ood_splits = _order_domains(_col_values(runs, "ood/"), fam.domains)
        self.ood_splits = ood_splits
        corr = _col_values(runs, "corr/")
        self.corruptions = sorted({c.split("/")[0] for c in corr})
        self.severities = sorted({int(c.split("/")[1]) for c in corr})
        protocols = counts(runs["protocol"]) if "protocol" in runs else [("coco", 1)]
        self.protocol = main = protocols[0][0]  # the summary's protocol of most runs
        if len(protocols) > 1:
            self.notes.append(
                "⚠ These records summarise AP with different protocols ("
                + ", ".join(p for p, _ in protocols) + "): rows are split by protocol (see the "
                "`version` column) and the column labels name the most common one."
            )
        tag = f" ({SUMMARY_PROTOCOLS[main][0] if main in SUMMARY_PROTOCOLS else main})" \
            if fam.voc else ""
        what = SUMMARY_PROTOCOLS[main][1] if main in SUMMARY_PROTOCOLS else f"AP ({main} protocol)"
        flags = {"ood": fam.ood, "corruption": fam.corruption, "id_ap50": fam.id_ap50,
                 "rgn_l2": fam.rgn_l2,
                 "masks": "id_mask_ap" in runs and bool(runs["id_mask_ap"].notna().any())}
        recorded = {m.group for m in metric_entries(scalar=True) if m.key in runs.columns}
        blocks: list[tuple[SummaryMetric, list[Column]]] = []
        for m in metric_entries():
            if m.show is None or not all(
                    m.group in recorded if f == "recorded" else flags.get(f, False)
                    for f in m.show):
                continue
            label = m.label + (tag if m.tagged else "")
            if m.per == "domain":
                cols = []
                for s in _order_domains(_col_values(runs, m.prefix), fam.domains):
                    lab = m.label.format(domain=_domain_label(s, fam)) + (tag if m.tagged else "")
                    cols.append(Column(f"{m.prefix}{s}", lab, m.fmt,
                                       m.note.format(label=lab, what=what, split=s)))
                blocks.append((m, cols))
            elif not m.per:
                blocks.append((m, [Column(m.key, label, m.fmt,
                                          m.note.format(label=label, what=what))]))
        self.columns = [c for _, cols in blocks for c in cols]
        # VOC families: ID AP and OOD mean also in the other protocol, after the OOD columns
        alt = "coco" if main == "voc" else "voc"
        ood_block = [i for i, (m, _) in enumerate(blocks) if "ood" in (m.show or ())]
        if fam.voc and ood_block and runs.get(f"{alt}_id_ap", pd.Series(dtype=float)
                                                ).notna().any():
            at = sum(len(cols) for _, cols in blocks[: ood_block[-1] + 1])
            extra = []
            for m in metric_entries():
                if m.alt_protocol:
                    lab = f"{m.label} ({SUMMARY_PROTOCOLS[alt][0]})"
                    extra.append(Column(f"{alt}_{m.key}", lab, m.fmt,
                                        f"{lab}: the same with {SUMMARY_PROTOCOLS[alt][1]}"))
            self.columns[at:at] = extra

    def _group_keys(self) -> list[str]:
        return ["config_key", "variant"]

    def _effective_robustness(self) -> None:
        fam, runs, opts = self.fam, self.runs, self.options
        x, y = fam.er_x, fam.er_y
        self.fit: tuple[float, float] | None = None
        self.baseline_points: list[tuple[float, float]] = []
        runs["er"] = np.nan
        if x not in runs.columns or y not in runs.columns:
            self.er_note = f"ER: not computed (no {self.er_x_label} / {self.er_y_label} values)."
            return
        means = runs.groupby(self._group_keys(), sort=True).agg(
            recipe=("recipe", "first"), x=(x, "mean"), y=(y, "mean")
        )
        base = means[(means.recipe == opts.baseline_recipe) & means.x.notna() & means.y.notna()]
        pts = sorted(zip(base.x.astype(float), base.y.astype(float), strict=True))
        self.baseline_points = pts
        if len(pts) < 2 or len({p[0] for p in pts}) < 2:
            self.er_note = (
                f"ER: not computed — the fit needs at least 2 `{opts.baseline_recipe}` rows "
                f"with different {self.er_x_label}; this family has {len(pts)}."
            )
            return
        self.fit = fit_logit_line([p[0] for p in pts], [p[1] for p in pts])
        ok = runs[x].notna() & runs[y].notna()
        runs.loc[ok, "er"] = [
            effective_robustness(float(a), float(b), self.fit)
            for a, b in zip(runs.loc[ok, x], runs.loc[ok, y], strict=True)
        ]
        slope, intercept = self.fit
        self.er_note = (
            f"ER = {self.er_y_label} − sigmoid({slope:.3f} · logit({self.er_x_label}) "
            f"{'+' if intercept >= 0 else '−'} {abs(intercept):.3f}), the line fitted through "
            f"the {len(pts)} `{opts.baseline_recipe}` rows (row means); per run, then mean ± "
            "std over seeds."
        )

    def _rows(self) -> pd.DataFrame:
        runs = self.runs
        values = [c for c in runs.columns if c in _value_columns()
                  or c.startswith(_VALUE_PREFIXES)]
        rows = aggregate(runs, self._group_keys(), values)
        first = runs.sort_values("fingerprint", kind="mergesort").groupby(
            self._group_keys(), sort=True).first()
        meta_cols = ["backbone_label", "backbone", "weights", "recipe", "recipe_label",
                     "recipe_params", "engine", "train_split", "id_split"]
        rows = rows.merge(first[meta_cols].reset_index(), on=self._group_keys(), how="left")
        grouped = runs.groupby(self._group_keys(), sort=True)
        rows = rows.merge(
            grouped.agg(code=("code", "first"), fingerprints=("fingerprint", tuple)).reset_index(),
            on=self._group_keys(), how="left",
        )
        rows["data_tag"] = [self._data_tag(fps) for fps in rows.fingerprints]
        self._version_flags(rows)
        display_names(rows)
        h = f"{self.fam.headline}|mean"
        rows["_h"] = rows[h] if h in rows.columns else np.nan
        rows = rows.sort_values(
            ["_h", "backbone_label", "recipe_display", "config_key", "variant"],
            ascending=[False, True, True, True, True], na_position="last", kind="mergesort",
        ).reset_index(drop=True)
        rows["rank"] = np.arange(1, len(rows) + 1)
        return rows

    def _data_tag(self, fps: Sequence[str]) -> str:
        if not self.conflicting_splits:
            return ""
        sub = self.runs[self.runs.fingerprint.isin(fps)]
        merged: dict[str, set[str]] = {}
        for ds in sub.datasets:
            for k, v in ds.items():
                if k in self.conflicting_splits:
                    merged.setdefault(k, set()).add(v)
        if not merged:
            return "—"
        return short_hash({k: sorted(v) for k, v in sorted(merged.items())}, 6)

    @property
    def conflicting_splits(self) -> set[str]:
        if not hasattr(self, "_conflicting"):
            seen: dict[str, set[str]] = {}
            for ds in self.runs.datasets:
                for k, v in ds.items():
                    seen.setdefault(k, set()).add(v)
            self._conflicting = {k for k, v in seen.items() if len(v) > 1}
        return self._conflicting

    def _version_flags(self, rows: pd.DataFrame) -> None:
        codes = sorted(set(rows.code))
        mixed_code = len(codes) > 1
        mixed_data = bool(self.conflicting_splits)
        self.mixed = mixed_code or mixed_data
        tags = [
            " · ".join(x for x in ((c if mixed_code else ""), (f"data {d}" if mixed_data else ""))
                       if x)
            for c, d in zip(rows.code, rows.data_tag, strict=True)
        ]
        rows["version"] = tags
        if not self.mixed:
            rows["flag"] = ""
            return
        weight = rows.groupby("version")["n_runs"].sum()
        majority = sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        rows["flag"] = ["" if v == majority else "⚠" for v in rows.version]
        split_cfg = rows.groupby("config_key")["variant"].nunique()
        parts = []
        if mixed_code:
            parts.append(f"{len(codes)} code versions ({', '.join(codes)})")
        if mixed_data:
            parts.append(
                "different dataset manifests for "
                + ", ".join(f"`{s}`" for s in sorted(self.conflicting_splits))
            )
        msg = (
            f"⚠ This table mixes {' and '.join(parts)}. Runs of one configuration are averaged "
            "only within one code version and dataset manifest: see the `version` column; ⚠ "
            f"marks rows outside the most common version ({majority})."
        )
        if (split_cfg > 1).any():
            msg += (f" {int((split_cfg > 1).sum())} configuration(s) appear as several rows, one "
                    "per version.")
        self.notes.append(msg)

    # ---- rendering ------------------------------------------------------------------------
    def table(self) -> Table:
        rows = self.rows
        multi_engine = rows.engine.nunique() > 1
        header = ["#", "Backbone", "Recipe"] + (["Engine"] if multi_engine else []) + ["n"]
        header += [c.label for c in self.columns]
        if self.mixed:
            header.append("version")
        t = Table(header)
        for _, r in rows.iterrows():
            cells = [f"{r['rank']}{(' ' + r['flag']) if r.get('flag') else ''}",
                     esc(r.backbone_display), esc(r.recipe_display)]
            if multi_engine:
                cells.append(esc(r.engine))
            cells.append(str(int(r.n_runs)))
            for c in self.columns:
                cells.append(self.cell(r, c.key, c.fmt))
            if self.mixed:
                cells.append(esc(r.version))
            t.rows.append(cells)
            t.row_titles.append(self.full_spec(r))
        notes = {c.label: c.note for c in self.columns}
        t.tooltips = [{"#": f"rank by {self.headline_label}", "n": "runs (seeds) in the row"}
                      .get(h, notes.get(h, "")) for h in header]
        return t

    def cell(self, r: Mapping[str, Any], key: str, fmt: Format) -> str:
        """mean ± std over the row's runs; ± only where n > 1, and "(n=…)" only where fewer
        runs than the row's have the value (the row's n is its own column)."""
        n = r.get(f"{key}|n")
        if n is None or not finite(n):
            return "—"
        return format_cell(r.get(f"{key}|mean"), r.get(f"{key}|std"), n, scale=fmt.scale,
                           digits=fmt.digits, signed=fmt.signed,
                           show_n=int(n) != int(r.get("n_runs") or n))

    def full_spec(self, r: Mapping[str, Any]) -> str:
        return (f"{r['backbone_label']} × {r['recipe_label']} · engine {r['engine']} · "
                f"train {r['train_split']} · runs {', '.join(f[:12] for f in r['fingerprints'])}")

    def column_notes(self) -> list[str]:
        notes = [c.note for c in self.columns if c.note]
        if self.fit is not None:
            notes.append(f"ER: effective robustness, AP points ({self.er_y_label} vs "
                         f"{self.er_x_label}; see below)")
        if self.fam.voc and self.protocol != "voc" and not self.runs.get(
                "voc_id_ap", pd.Series(dtype=float)).notna().any():
            notes.append("VOC-protocol AP is not in these records (the published Pascal "
                         "numbers use it; the deltas below then compare against COCO-protocol "
                         "AP and are marked †)")
        return notes

    def corruption_means(self, r: Mapping[str, Any]) -> list[float]:
        """The row's AP per corruption, averaged over the severities it has (NaN: none)."""
        prefix = SUMMARY_METRICS.get("corruption").prefix
        out = []
        for c in self.corruptions:
            vals = [r.get(f"{prefix}{c}/{s}|mean") for s in self.severities]
            vals = [float(v) for v in vals if finite(v)]
            out.append(float(np.mean(vals)) if vals else float("nan"))
        return out

    def row_label(self, r: Mapping[str, Any]) -> str:
        return f"{r['backbone_display']} × {r['recipe_display']}"

    def _baseline_key(self, r: Mapping[str, Any]) -> tuple[Any, ...]:
        return (r["engine"], r["backbone_label"], r["train_split"], r["id_split"], r["code"],
                r["data_tag"])

    def _baseline_index(self) -> dict[tuple[Any, ...], int]:
        index: dict[tuple[Any, ...], int] = {}
        rows = self.rows
        for i, r in zip(rows.index, rows.to_dict("records"), strict=True):
            if r["recipe"] == self.options.baseline_recipe:
                index.setdefault(self._baseline_key(r), i)  # rows are ranked: best first
        return index

    def baseline_row(self, r: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The best-ranked baseline-recipe row with the same engine, backbone, data splits,
        code version and dataset manifest."""
        i = self._baselines.get(self._baseline_key(r))
        return None if i is None else self.rows.loc[i]
