"""``python -m benchmark.report``: run records → BENCHMARKS.md, leaderboard CSV/Parquet/HTML, plots.

    python -m benchmark.report [--results DIR] [--out BENCHMARKS.md] [--check]
                               [--baseline-recipe ft] [--bootstrap 1000] [--seed 0]

The markdown is a pure function of the records (and, for the bootstrap intervals, of the
saved predictions or the committed interval cache): no timestamps, stable orders. ``--check``
renders it in memory and exits 1 when the file on disk differs. Plots, CSV, Parquet and HTML
are written next to the results and are not part of the check.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import aggregate as agg
from benchmark import published as pub
from benchmark.stats import CACHE_VERSION
from benchmark.store import atomic_write_bytes, atomic_write_text, results_root

TEMPLATES = Path(__file__).parent / "templates"
CACHE_FILE = "bootstrap_cache.json"
HEATMAP_PANELS = 30  # rows drawn in the corruption heatmap (best ranked first)


# ---- what each benchmark family shows ---------------------------------------------------------
@dataclass(frozen=True)
class FamilySpec:
    name: str
    title: str
    description: str
    headline: str  # runs-frame column the rows are ranked by (descending)
    headline_label: str
    er_x: str  # ID axis of the effective-robustness fit
    er_y: str  # OOD axis
    domains: tuple[str, ...] = ()  # preferred order of OOD splits (substrings)
    id_ap50: bool = False
    ood: bool = True
    corruption: bool = False  # P / mPC / rPC columns (shown when the records have them)
    rgn_l2: bool = False
    voc: bool = False

    @property
    def er_x_label(self) -> str:
        return {"id_ap": "ID AP", "P": "P (clean AP)"}.get(self.er_x, self.er_x)

    @property
    def er_y_label(self) -> str:
        return {"ood_mean": "OOD mean AP", "mPC": "mPC"}.get(self.er_y, self.er_y)


FAMILIES: dict[str, FamilySpec] = {
    f.name: f
    for f in (
        FamilySpec(
            "pascal", "Pascal VOC → Clipart / Watercolor / Comic",
            "Faster R-CNN trained on VOC 2007+2012 trainval, evaluated on VOC 2007 test (ID) "
            "and the Clipart1k, Watercolor2k and Comic2k test splits (OOD; Watercolor and "
            "Comic annotate 6 classes, classes without ground truth are skipped).",
            "ood_mean", "OOD mean AP", "id_ap", "ood_mean",
            domains=("clipart", "watercolor", "comic"), voc=True, corruption=True,
        ),
        FamilySpec(
            "cityscapes", "Cityscapes → Foggy Cityscapes / BDD100K",
            "Trained on Cityscapes (8 thing classes), evaluated on Cityscapes val (ID), Foggy "
            "Cityscapes (β = 0.02) and BDD100K val (OOD).",
            "ood_mean", "OOD mean AP", "id_ap", "ood_mean", domains=("foggy", "bdd"),
            corruption=True,
        ),
        FamilySpec(
            "coco_c", "COCO → COCO-C",
            "Trained on COCO 2017, evaluated on val2017 clean (P) and corrupted (15 benchmark "
            "corruptions × severities 1–5, corruptions applied at the original resolution).",
            "mPC", "mPC", "P", "mPC", ood=False, corruption=True,
        ),
        FamilySpec(
            "coco_o", "COCO → COCO-O",
            "Trained on COCO 2017, evaluated on val2017 (ID) and the six COCO-O domains (OOD).",
            "ood_mean", "OOD mean AP", "id_ap", "ood_mean",
            domains=("sketch", "cartoon", "painting", "weather", "handmake", "tattoo"),
        ),
        FamilySpec(
            "demo", "Demo (offline, generated data)",
            "The offline demo: generated photos (ID) vs three stylised renderings of the same "
            "test scenes (OOD), plus corruptions of the ID test split.",
            "ood_mean", "OOD mean AP", "id_ap", "ood_mean", id_ap50=True, corruption=True,
            rgn_l2=True,
        ),
    )
}


def family_spec(name: str) -> FamilySpec:
    if name in FAMILIES:
        return FAMILIES[name]
    return FamilySpec(name, f"{name} (unrecognised family)", "A family the report does not "
                      "know; shown with the generic columns.", "ood_mean", "OOD mean AP",
                      "id_ap", "ood_mean", id_ap50=True, corruption=True, rgn_l2=True)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str  # ap | pct | gap | er | rgn
    protocol: str = ""


FORMATS: dict[str, dict[str, Any]] = {
    "ap": {"scale": 100.0, "digits": 1},
    "pct": {"scale": 100.0, "digits": 1},
    "gap": {"scale": 100.0, "digits": 1},
    "er": {"scale": 100.0, "digits": 1, "signed": True},
    "rgn": {"scale": 1.0, "digits": 3},
}


# ---- report model (what the templates render) --------------------------------------------------
@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    text_columns: int = 3  # left-aligned leading columns; the rest are numbers

    @property
    def align(self) -> list[str]:
        return ["---" if i < self.text_columns else "---:" for i in range(len(self.columns))]

    @property
    def md(self) -> str:
        """The table as GitHub markdown (no trailing newline)."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "|".join(self.align) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Plot:
    title: str
    file: str  # file name under the plots directory


@dataclass
class FamilySection:
    name: str
    title: str
    description: str
    headline_label: str
    table: Table
    column_notes: list[str]
    notes: list[str] = field(default_factory=list)
    er_note: str = ""
    published: Table | None = None
    published_notes: list[str] = field(default_factory=list)
    uncertainty: Table | None = None
    paired: Table | None = None
    uncertainty_notes: list[str] = field(default_factory=list)
    corruption_tables: list[tuple[str, Table]] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    results: Path
    out: Path
    baseline_recipe: str = "ft"
    n_resamples: int = 1000
    seed: int = 0
    level: float = 0.95
    exports: bool = True  # build the run × split frame for the CSV/Parquet (not for --check)


@dataclass
class Report:
    markdown: str
    html: str
    plot_jobs: list[tuple[str, Callable[[Path], Any]]]
    cache: dict[str, Any]
    frames: agg.Frames
    runs: pd.DataFrame  # frames.runs plus code / variant / er

    @property
    def skipped(self) -> list[agg.Skipped]:
        return self.frames.skipped

    def leaderboard(self) -> pd.DataFrame:
        """One row per run × eval split, with the run's version tag and ER."""
        if self.frames.long is None:
            raise ValueError("built with exports=False: no run × split frame")
        return leaderboard_frame(self.frames.long, self.runs)


# ---- small helpers ----------------------------------------------------------------------------
def _esc(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _fmt_ap(v: Any, digits: int = 1, signed: bool = False) -> str:
    if not _finite(v):
        return "—"
    value = 100 * float(v)
    if round(value, digits) == 0:
        value = 0.0
    return f"{value:{'+' if signed else ''}.{digits}f}"


def _order_domains(splits: Sequence[str], preferred: Sequence[str]) -> list[str]:
    def rank(s: str) -> tuple[int, str]:
        low = s.lower()
        for i, p in enumerate(preferred):
            if p in low:
                return i, s
        return len(preferred), s

    return sorted(splits, key=rank)


def _domain_label(split: str, fam: FamilySpec) -> str:
    low = split.lower()
    for p in fam.domains:
        if p in low:
            return p.capitalize() if p != "bdd" else "BDD"
    return split


def _col_values(frame: pd.DataFrame, prefix: str) -> list[str]:
    return sorted(c[len(prefix):] for c in frame.columns if c.startswith(prefix))


# ---- family tables ----------------------------------------------------------------------------
class FamilyBuilder:
    """Aggregates one family's runs into ranked rows, ER, published comparisons and stats."""

    def __init__(self, name: str, runs: pd.DataFrame, options: Options) -> None:
        self.fam = family_spec(name)
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
                "predictions", "datasets", *self.corr_columns]
        self.run_dicts = {d["fingerprint"]: d for d in self.runs[keep].to_dict("records")}
        self._baselines = self._baseline_index()

    # columns present in this family's records, in display order
    def _columns(self) -> None:
        fam, runs = self.fam, self.runs
        ood_splits = _order_domains(_col_values(runs, "ood/"), fam.domains)
        self.ood_splits = ood_splits
        corr = _col_values(runs, "corr/")
        self.corruptions = sorted({c.split("/")[0] for c in corr})
        self.severities = sorted({int(c.split("/")[1]) for c in corr})
        protocols = agg.counts(runs["protocol"]) if "protocol" in runs else [("coco", 1)]
        self.protocol = main = protocols[0][0]  # the summary's protocol of most runs
        if len(protocols) > 1:
            self.notes.append(
                "⚠ These records summarise AP with different protocols ("
                + ", ".join(p for p, _ in protocols) + "): rows are split by protocol (see the "
                "`version` column) and the column labels name the most common one."
            )
        name = {"coco": "COCO", "voc": "VOC"}
        desc = {"coco": "COCO AP@[.5:.95] (101-point)",
                "voc": "VOC-protocol AP@[.5:.95] (11-point on VOC2007 test, area under the "
                       "curve on the other splits)"}
        tag = f" ({name.get(main, main)})" if fam.voc else ""
        what = desc.get(main, f"AP ({main} protocol)")
        cols: list[Column] = []
        if fam.ood:
            cols.append(Column("id_ap", f"ID AP{tag}", "ap", f"ID AP{tag}: {what} on the ID "
                               "test split"))
            if fam.id_ap50:
                cols.append(Column("id_ap50", f"ID AP50{tag}", "ap",
                                   f"ID AP50{tag}: AP at IoU 0.50"))
            for s in ood_splits:
                label = f"{_domain_label(s, fam)} AP{tag}"
                cols.append(Column(f"ood/{s}", label, "ap", f"{label}: {what} on `{s}`"))
            cols.append(Column("ood_mean", f"OOD mean{tag}", "ap",
                               f"OOD mean{tag}: unweighted mean of the OOD APs"))
            cols.append(Column("gap", "gap", "gap", "gap: ID AP − OOD mean, AP points"))
            alt = "coco" if main == "voc" else "voc"
            if fam.voc and runs.get(f"{alt}_id_ap", pd.Series(dtype=float)).notna().any():
                for key, label in (("id_ap", "ID AP"), ("ood_mean", "OOD mean")):
                    lab = f"{label} ({name[alt]})"
                    cols.append(Column(f"{alt}_{key}", lab, "ap",
                                       f"{lab}: the same with {desc[alt]}"))
        if fam.corruption and ("P" in runs.columns or "mPC" in runs.columns):
            cols.append(Column("P", f"P{tag}", "ap", f"P{tag}: {what} on the clean "
                               "corruption base split"))
            cols.append(Column("mPC", f"mPC{tag}", "ap", f"mPC{tag}: mean AP over the "
                               "corruption × severity conditions"))
            cols.append(Column("rPC", "rPC (%)", "pct", "rPC: mPC / P, percent"))
        cols.append(Column("er", "ER", "er", ""))  # described with the fit
        cols.append(Column("rgn", "RGN", "rgn", "RGN: `rgn`, the code definition (see "
                           "definitions)"))
        if fam.rgn_l2:
            cols.append(Column("rgn_l2", "RGN (L2)", "rgn", "RGN (L2): `rgn_l2`, per-layer "
                               "‖G‖₂/‖W‖₂"))
        self.columns = cols

    def _group_keys(self) -> list[str]:
        return ["config_key", "variant"]

    def _effective_robustness(self) -> None:
        fam, runs, opts = self.fam, self.runs, self.options
        from benchmark.metrics import effective_robustness, fit_logit_line

        x, y = fam.er_x, fam.er_y
        self.fit: tuple[float, float] | None = None
        self.baseline_points: list[tuple[float, float]] = []
        runs["er"] = np.nan
        if x not in runs.columns or y not in runs.columns:
            self.er_note = f"ER: not computed (no {fam.er_x_label} / {fam.er_y_label} values)."
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
                f"with different {fam.er_x_label}; this family has {len(pts)}."
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
            f"ER = {fam.er_y_label} − sigmoid({slope:.3f} · logit({fam.er_x_label}) "
            f"{'+' if intercept >= 0 else '−'} {abs(intercept):.3f}), the line fitted through "
            f"the {len(pts)} `{opts.baseline_recipe}` rows (row means); per run, then mean ± "
            "std over seeds."
        )

    def _rows(self) -> pd.DataFrame:
        runs = self.runs
        values = [c for c in runs.columns if c in ("id_ap", "id_ap50", "id_ap75", "ood_mean",
                  "ood_mean_ap50", "gap", "P", "mPC", "rPC", "rgn", "rgn_l2", "er", "coco_id_ap",
                  "coco_ood_mean", "voc_id_ap", "voc_ood_mean")
                  or c.startswith(("ood/", "voc_ood/", "coco_ood/", "corr/"))]
        rows = agg.aggregate(runs, self._group_keys(), values)
        first = runs.sort_values("fingerprint", kind="mergesort").groupby(
            self._group_keys(), sort=True).first()
        meta_cols = ["backbone_label", "backbone", "weights", "recipe", "recipe_label",
                     "engine", "train_split", "id_split"]
        rows = rows.merge(first[meta_cols].reset_index(), on=self._group_keys(), how="left")
        grouped = runs.groupby(self._group_keys(), sort=True)
        rows = rows.merge(
            grouped.agg(code=("code", "first"), fingerprints=("fingerprint", tuple)).reset_index(),
            on=self._group_keys(), how="left",
        )
        rows["data_tag"] = [self._data_tag(fps) for fps in rows.fingerprints]
        self._version_flags(rows)
        # a configuration label when two configurations share backbone × recipe labels
        dup = rows.groupby(["engine", "backbone_label", "recipe_label"])["config_key"].transform(
            "nunique")
        rows["recipe_display"] = [
            f"{r} ‹cfg {ck[:6]}›" if d > 1 else r
            for r, ck, d in zip(rows.recipe_label, rows.config_key, dup, strict=True)
        ]
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
        return agg.short_hash({k: sorted(v) for k, v in sorted(merged.items())}, 6)

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
                     _esc(r.backbone_label), _esc(r.recipe_display)]
            if multi_engine:
                cells.append(_esc(r.engine))
            cells.append(str(int(r.n_runs)))
            for c in self.columns:
                cells.append(self.cell(r, c.key, c.kind))
            if self.mixed:
                cells.append(_esc(r.version))
            t.rows.append(cells)
        return t

    def cell(self, r: Mapping[str, Any], key: str, kind: str) -> str:
        n = r.get(f"{key}|n")
        if n is None or not _finite(n):
            return "—"
        return agg.format_cell(r.get(f"{key}|mean"), r.get(f"{key}|std"), n, **FORMATS[kind])

    def column_notes(self) -> list[str]:
        notes = [c.protocol for c in self.columns if c.protocol]
        if self.fit is not None:
            notes.append(f"ER: effective robustness, AP points ({self.fam.er_y_label} vs "
                         f"{self.fam.er_x_label}; see below)")
        if self.fam.voc and self.protocol != "voc" and not self.runs.get(
                "voc_id_ap", pd.Series(dtype=float)).notna().any():
            notes.append("VOC-protocol AP is not in these records (the published Pascal "
                         "numbers use it; the deltas below then compare against COCO-protocol "
                         "AP and are marked †)")
        return notes

    def corruption_tables(self) -> list[tuple[str, Table]]:
        if not self.corruptions:
            return []
        out = []
        for _, r in self.rows.iterrows():
            proto = f" ({self.protocol.upper()} AP)" if self.fam.voc else ""
            t = Table([f"corruption{proto}", *[f"s{s}" for s in self.severities], "mean"],
                      text_columns=1)
            for c in self.corruptions:
                cells = [self.cell(r, f"corr/{c}/{s}", "ap") for s in self.severities]
                vals = [r.get(f"corr/{c}/{s}|mean") for s in self.severities]
                vals = [float(v) for v in vals if _finite(v)]
                mean = _fmt_ap(np.mean(vals)) if vals else "—"
                t.rows.append([c, *cells, mean])
            out.append((f"{r['rank']}. {r.backbone_label} × {r.recipe_display}"
                        + (f" ({r.version})" if r.version else ""), t))
        return out

    def row_label(self, r: Mapping[str, Any]) -> str:
        return f"{r['backbone_label']} × {r['recipe_display']}"

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


# ---- published reference rows -------------------------------------------------------------------
def published_table(fb: FamilyBuilder) -> tuple[Table | None, list[str]]:
    refs = pub.rows_for(fb.fam.name)
    if not refs:
        return None, []
    keys = list(refs[0].values)
    domain_col = {}
    for k in keys:
        split = next((s for s in fb.ood_splits if k in s.lower()), None)
        domain_col[k] = split
    labels = {"id_ap": "ID AP", "ood_mean": "OOD mean", "gap": "gap", "P": "P", "mPC": "mPC",
              "rPC": "rPC (%)"}
    header = ["Backbone (published)", "Recipe"]
    header += [labels.get(k, k.capitalize()) for k in keys]
    header += ["matched reproduced row", "source"]
    t = Table(header, text_columns=2)
    notes: list[str] = []
    dagger = False
    for ref in refs:
        match = None
        for _, r in fb.rows.iterrows():
            if r.recipe == ref.recipe and ref.match.matches(r.backbone, r.weights):
                match = r
                break
        cells = [f"{_esc(ref.backbone)} — *published*", ref.recipe]
        for k in keys:
            pv = ref.values[k]
            text = _fmt_ap(pv) + (" (derived)" if k in ref.derived else "")
            if match is not None:
                col, mark = _reproduced_key(k, domain_col, fb)
                mean = match.get(f"{col}|mean") if col else None
                if _finite(mean):
                    dagger = dagger or bool(mark)
                    text += (f" / {_fmt_ap(mean)}{mark} "
                             f"(Δ {_fmt_ap(float(mean) - pv, signed=True)})")
            cells.append(text)
        cells.append(f"#{match['rank']} {_esc(fb.row_label(match))}" if match is not None
                     else "none")
        cells.append(_esc(ref.source))
        t.rows.append(cells)
    notes.append("Cells: published value, then `/ reproduced (Δ reproduced − published)` for "
                 "the best-ranked reproduced row with the same family, backbone and recipe.")
    if dagger:
        notes.append("† reproduced with the COCO protocol, published with the VOC protocol: "
                     "not like for like.")
    return t, notes


def _reproduced_key(key: str, domain_col: Mapping[str, str | None], fb: FamilyBuilder
                    ) -> tuple[str | None, str]:
    """The rows' column to compare a published value with, and "†" when the protocols differ
    (published Pascal numbers are VOC-protocol; the others COCO)."""
    if not fb.fam.voc:
        return key, ""
    split = domain_col.get(key)
    if fb.protocol == "voc":  # the summary is VOC-protocol: like for like
        return (f"ood/{split}" if split else key if key in ("id_ap", "ood_mean", "gap")
                else None), ""
    have_voc = "voc_id_ap|mean" in fb.rows.columns and fb.rows["voc_id_ap|mean"].notna().any()
    if have_voc and key in ("id_ap", "ood_mean"):
        return f"voc_{key}", ""
    if have_voc and split and f"voc_ood/{split}|mean" in fb.rows.columns:
        return f"voc_ood/{split}", ""
    if split:
        return f"ood/{split}", "†"
    return (key, "†") if key in ("id_ap", "ood_mean", "gap") else (None, "")


# RGN is recorded at the start weights of each run's training stage; for dp_ft that is the DP
# checkpoint, where "Mind the Backbone" measures it. Per backbone, the first recipe here that
# has RGN values stands for the backbone (published deltas, the RGN-vs-OOD figure).
RGN_RECIPES = ("dp_ft", "dp", "ft")


def _rgn_source(g: pd.DataFrame) -> pd.DataFrame:
    """The runs whose RGN represents a backbone: those of the preferred recipe present."""
    have = g[g["rgn"].notna()] if "rgn" in g.columns else g[:0]
    for recipe in RGN_RECIPES:
        sub = have[have.recipe == recipe]
        if not sub.empty:
            return sub
    return have


def rgn_table(runs: pd.DataFrame) -> tuple[Table, list[str]]:
    """RGN per backbone × recipe (all families), with the published values next to the
    representative recipe's row."""
    t = Table(["Backbone", "measured for", "rgn (code)", "rgn_l2", "runs", "published rgn", "Δ",
               "source"], text_columns=2)
    have = runs[runs["rgn"].notna()] if "rgn" in runs.columns else runs[:0]
    matched: set[str] = set()
    for (name, weights, label), g in have.groupby(["backbone", "weights", "backbone_label"],
                                                  sort=True):
        ref = next((p for p in pub.PUBLISHED_RGN if p.match.matches(name, weights)), None)
        rep = _rgn_source(g)
        rep_recipe = rep.recipe.iloc[0] if not rep.empty else None
        for recipe, r in g.groupby("recipe", sort=True):
            rgn = r["rgn"].astype(float)
            l2 = r["rgn_l2"].astype(float) if "rgn_l2" in r else pd.Series(dtype=float)
            cells = [_esc(label), f"`{recipe}`",
                     agg.format_cell(rgn.mean(), rgn.std(ddof=1), rgn.count(), **FORMATS["rgn"]),
                     agg.format_cell(l2.mean(), l2.std(ddof=1), l2.count(), **FORMATS["rgn"]),
                     str(len(r))]
            if ref is not None and recipe == rep_recipe:
                matched.add(ref.backbone)
                cells += [f"{ref.rgn:.3f} (*published*: {_esc(ref.backbone)})",
                          f"{rgn.mean() - ref.rgn:+.3f}", _esc(ref.source)]
            else:
                cells += ["—", "—", ""]
            t.rows.append(cells)
    for ref in pub.PUBLISHED_RGN:
        if ref.backbone not in matched:
            t.rows.append([f"{_esc(ref.backbone)} — *published*", "—", "—", "—", "0",
                           f"{ref.rgn:.3f}", "—", _esc(ref.source)])
    notes = [
        "Each run records RGN at the start weights of its training stage: for `dp_ft` that is "
        "the DP checkpoint, where the paper measures it; for `ft` and `dp` the pretrained "
        "backbone with a fresh decoder. Published values are compared with the first of "
        f"{', '.join(f'`{r}`' for r in RGN_RECIPES)} that a backbone has."
    ]
    return t, notes


# ---- uncertainty ------------------------------------------------------------------------------
def _iv_text(iv: Any, *, signed: bool = False) -> str:
    """``"44.6 [43.1, 46.0]"`` in percent / AP points; "—" without an interval."""
    if iv is None or not _finite(iv.estimate):
        return "—"
    if not _finite(iv.low):
        return _fmt_ap(iv.estimate, signed=signed)
    return (f"{_fmt_ap(iv.estimate, signed=signed)} [{_fmt_ap(iv.low, signed=signed)}, "
            f"{_fmt_ap(iv.high, signed=signed)}]")


def _p_text(iv: Any) -> str:
    if iv is None or iv.p_value is None or not _finite(iv.p_value):
        return "—"
    return f"{iv.p_value:.3f}" if iv.p_value >= 0.001 else "<0.001"


def _row_runs(fb: FamilyBuilder, r: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [fb.run_dicts[fp] for fp in sorted(r["fingerprints"])]


Gains = dict[tuple[str, str], tuple[float, float, float]]


def uncertainty_tables(fb: FamilyBuilder, unc: Any
                       ) -> tuple[Table | None, Table | None, list[str], Gains]:
    """Row intervals, paired comparisons against the baseline recipe, and the paired gains
    per (backbone, recipe) for the gain plot. ``unc`` is a :class:`stats.RecordBootstrap`
    (None: bootstrap disabled)."""
    from benchmark import stats as st

    o = fb.options
    gains: Gains = {}
    if unc is None:
        return None, None, ["Bootstrap intervals disabled (`--bootstrap 0`)."], gains
    tag = " (COCO)" if fb.fam.voc else ""  # intervals are for COCO-protocol AP
    t = Table(["#", "Backbone", "Recipe", f"ID AP{tag} [95% CI]", f"OOD mean{tag} [95% CI]",
               f"mPC{tag} [95% CI]", "rPC % [95% CI]"])
    headline = "mPC" if fb.fam.headline == "mPC" else "OOD mean"
    paired = Table(["Backbone", "Recipe", "vs", f"Δ {headline}{tag} [95% CI]", "p",
                    f"Δ ID AP{tag} [95% CI]", "p"])
    any_iv = False
    unc.missing = []
    by_rank: dict[int, dict[str, st.Builder]] = {}
    for _, r in fb.rows.iterrows():
        runs = _row_runs(fb, r)
        stats = st.row_statistics(runs, fb.corr_columns)
        by_rank[int(r["rank"])] = stats
        cells = [str(r["rank"]), _esc(r.backbone_label), _esc(r.recipe_display)]
        for name in ("AP", "OOD mean", "mPC", "rPC"):
            iv = unc.interval(name, runs, stats[name]) if name in stats else None
            any_iv = any_iv or iv is not None
            cells.append(_iv_text(iv))
        t.rows.append(cells)
    for _, r in fb.rows.iterrows():
        b = None if r.recipe == o.baseline_recipe else fb.baseline_row(r)
        if b is None:
            continue
        runs = [*_row_runs(fb, r), *_row_runs(fb, b)]
        sa, sb = by_rank[int(r["rank"])], by_rank[int(b["rank"])]
        cells = [_esc(r.backbone_label), _esc(r.recipe_display), _esc(b.recipe_display)]
        for name in (headline, "AP"):
            if name not in sa or name not in sb:
                cells += ["—", "—"]
                continue
            iv = unc.interval(f"Δ {name}", runs, st.paired(sa[name], sb[name]), paired=True)
            any_iv = any_iv or iv is not None
            cells += [_iv_text(iv, signed=True), _p_text(iv)]
            if name == headline and iv is not None:
                gains[(r.backbone_label, r.recipe_display)] = (iv.estimate, iv.low, iv.high)
        paired.rows.append(cells)
    notes = []
    if unc.missing:
        notes.append(f"Bootstrap intervals omitted where saved predictions or prepared ground "
                     f"truth are not available on this machine and no cached interval exists "
                     f"({len(unc.missing)} statistics; e.g. {sorted(set(unc.missing))[0]}).")
    if not any_iv:
        return None, None, notes or ["No intervals computed."], gains
    notes.append(f"{int(100 * o.level)}% basic bootstrap intervals of COCO-protocol AP over "
                 f"{o.n_resamples} image-level resamples (seed {o.seed}); paired rows resample "
                 f"the same images for the recipe and its `{o.baseline_recipe}` baseline (same "
                 "backbone); p: two-sided bootstrap p-value of Δ = 0.")
    return t, (paired if paired.rows else None), notes, gains


# ---- plots ------------------------------------------------------------------------------------
def plot_jobs_for(fb: FamilyBuilder, gains: Mapping[tuple[str, str], Any], seed: int
                  ) -> list[tuple[str, str, Callable[[Path], Any]]]:
    """(title, file name, writer(path)) for the family's figures."""
    from benchmark import plots
    from benchmark.stats import er_band

    fam, rows = fb.fam, fb.rows
    jobs: list[tuple[str, str, Callable[[Path], Any]]] = []
    x, y = fam.er_x, fam.er_y
    pts = []
    for _, r in rows.iterrows():
        mx, my = r.get(f"{x}|mean"), r.get(f"{y}|mean")
        if _finite(mx) and _finite(my):
            sx, sy = r.get(f"{x}|std"), r.get(f"{y}|std")
            pts.append(plots.Point(r.backbone_label, r.recipe_display, float(mx), float(my),
                                   float(sx) if _finite(sx) else 0.0,
                                   float(sy) if _finite(sy) else 0.0))
    if pts:
        fit = fb.fit
        base_pts = list(fb.baseline_points) if fit is not None else []
        published = [plots.Point(ref.backbone, ref.recipe, ref.values[x], ref.values[y])
                     for ref in pub.rows_for(fam.name) if x in ref.values and y in ref.values]
        title = f"{fam.title}: {fam.er_y_label} vs {fam.er_x_label}"

        def id_vs_ood(path: Path, pts: list[Any] = pts, fit: Any = fit,
                      base_pts: list[tuple[float, float]] = base_pts,
                      published: list[Any] = published, title: str = title) -> Any:
            band = None
            if len(base_pts) >= 3:  # the band is drawn by the (forked) plotting process
                xs = [p.x for p in pts]
                grid = np.linspace(max(1e-3, min(xs) - 0.02), min(1 - 1e-3, max(xs) + 0.02), 60)
                b = er_band([p[0] for p in base_pts], [p[1] for p in base_pts], grid, seed=seed)
                band = None if b is None else (grid, b[0], b[1])
            return plots.id_vs_ood(path, title, pts, xlabel=fam.er_x_label,
                                   ylabel=fam.er_y_label, fit=fit, band=band,
                                   fit_label=f"{fb.options.baseline_recipe} fit (logit)",
                                   published=published)

        jobs.append((title, f"{fam.name}_id_vs_ood.png", id_vs_ood))
    if fb.corruptions:
        panels = []
        for _, r in rows.head(HEATMAP_PANELS).iterrows():
            m = np.array([[float(r.get(f"corr/{c}/{s}|mean", np.nan)) for s in fb.severities]
                          for c in fb.corruptions])
            panels.append((f"{r['rank']}. {fb.row_label(r)}", m))
        name = f"{fam.name}_corruption_heatmap.png"
        title = f"{fam.title}: AP per corruption × severity"
        if len(rows) > HEATMAP_PANELS:
            title += f" (top {HEATMAP_PANELS} rows)"
        jobs.append((title, name, lambda p, panels=panels, title=title: plots.corruption_heatmap(
            p, title, panels, fb.corruptions, fb.severities)))
    base = fb.options.baseline_recipe
    h = f"{fam.headline}|mean"
    bar: dict[tuple[str, str], tuple[float, float, float]] = {}
    for _, r in rows.iterrows():
        if r.recipe == base:
            continue
        b = fb.baseline_row(r)
        if b is None or not _finite(r.get(h)) or not _finite(b.get(h)):
            continue
        key = (r.backbone_label, r.recipe_display)
        if key in gains:
            bar[key] = gains[key]
        elif key not in bar:
            g = float(r[h]) - float(b[h])
            bar[key] = (g, float("nan"), float("nan"))
    if bar:
        backbones = sorted({k[0] for k in bar})
        recipes = sorted({k[1] for k in bar})
        name = f"{fam.name}_gain_over_{base}.png"
        title = f"{fam.title}: {fam.headline_label} gain over {base}"
        jobs.append((title, name, lambda p, bar=bar, title=title: plots.gain_over_baseline(
            p, title, backbones, recipes, bar, ylabel=f"Δ {fam.headline_label} vs {base} "
            "(points)")))
    return jobs


def rgn_plot_job(builders: Sequence[FamilyBuilder]) -> tuple[str, str, Callable[[Path], Any]]:
    from benchmark import plots

    pts = []
    for fb in builders:
        rows = fb.rows
        y = f"{fb.fam.er_y}|mean"
        for (engine, label), g in rows.groupby(["engine", "backbone_label"], sort=True):
            ft, dp = g[g.recipe == "ft"], g[g.recipe == "dp"]
            if ft.empty or dp.empty or y not in g:
                continue
            a, b = ft.iloc[0], dp.iloc[0]
            runs = _rgn_source(fb.runs[(fb.runs.backbone_label == label)
                                       & (fb.runs.engine == engine)])
            rgn = runs["rgn"].astype(float).mean() if not runs.empty else float("nan")
            if _finite(a[y]) and _finite(b[y]) and _finite(rgn):
                pts.append(plots.Point(f"{label} ({fb.fam.name})", fb.fam.name, float(rgn),
                                       float(a[y]) - float(b[y])))
    published = [plots.Point(n, "published", rgn, d) for n, rgn, d in pub.rgn_ood_change()]
    return ("RGN vs OOD change under FT (FT − DP)", "rgn_vs_ood_change.png",
            lambda p: plots.rgn_vs_ood_change(p, pts, published))


# ---- provenance ---------------------------------------------------------------------------------
def provenance_summary(runs: pd.DataFrame) -> dict[str, Any]:
    if runs.empty:
        return {}
    datasets: dict[str, list[tuple[str, int]]] = {}
    per_split: dict[str, list[str]] = {}
    for ds in runs.datasets:
        for k, v in ds.items():
            per_split.setdefault(k, []).append(v[:12])
    for k in sorted(per_split):
        datasets[k] = agg.counts(per_split[k])
    dirty = int(runs.git_dirty.fillna(False).astype(bool).sum()) if "git_dirty" in runs else 0
    return {
        "code": agg.counts(runs.code),
        "commits": agg.counts(c[:10] or "unknown" for c in runs.git_commit),
        "dirty": dirty,
        "datasets": datasets,
        "torch": agg.counts(v or "unknown" for v in runs.torch),
        "devices": agg.counts(v or "unknown" for v in runs.device),
        "engines": agg.counts(runs.engine),
        "grids": agg.counts(v or "—" for v in runs.grid),
    }


# ---- the whole report -------------------------------------------------------------------------
def build_report(options: Options) -> Report:
    frames = agg.load_frames(options.results, long=options.exports)
    runs = frames.runs.copy()
    cache = _read_cache(options.results)
    unc = None
    if options.n_resamples > 0:
        from benchmark.stats import RecordBootstrap

        unc = RecordBootstrap(options.n_resamples, options.seed, options.level, cache)
    families: list[FamilySection] = []
    builders: list[FamilyBuilder] = []
    plot_jobs: list[tuple[str, Callable[[Path], Any]]] = []
    if not runs.empty:
        runs["code"] = [agg.code_key(r) for r in
                        runs[["code_version", "results_version", "protocol"]].to_dict("records")]
        runs["er"] = np.nan
        runs["variant"] = agg.assign_variants(runs)
        order = [f for f in FAMILIES if f in set(runs.family)]
        order += sorted(set(runs.family) - set(FAMILIES))
        for name in order:
            fb = FamilyBuilder(name, runs[runs.family == name], options)
            builders.append(fb)
            runs.loc[fb.runs.index, "er"] = fb.runs["er"]
            column_notes = fb.column_notes()
            sec = FamilySection(fb.fam.name, fb.fam.title, fb.fam.description,
                                fb.fam.headline_label, fb.table(), column_notes,
                                notes=list(fb.notes), er_note=fb.er_note)
            sec.published, sec.published_notes = published_table(fb)
            ut, pt, un, gains = uncertainty_tables(fb, unc)
            sec.uncertainty, sec.paired, sec.uncertainty_notes = ut, pt, un
            sec.corruption_tables = fb.corruption_tables()
            for title, fname, job in plot_jobs_for(fb, gains, options.seed):
                sec.plots.append(Plot(title, fname))
                plot_jobs.append((fname, job))
            families.append(sec)
    rgn_plot: Plot | None = None
    if builders:
        title, fname, job = rgn_plot_job(builders)
        rgn_plot = Plot(title, fname)
        plot_jobs.append((fname, job))
    rgn_t, rgn_notes = rgn_table(runs) if not runs.empty else (None, [])
    context = {
        "options": options,
        "n_records": frames.n_records,
        "loaded": frames,
        "families": families,
        "rgn_table": rgn_t,
        "rgn_notes": rgn_notes,
        "rgn_plot": rgn_plot,
        "provenance": provenance_summary(runs),
        "skipped": frames.skipped,
        "plots_rel": _rel(options.results / "plots", options.out.parent),
    }
    markdown = _render("benchmarks.md.j2", context)
    html = _render("leaderboard.html.j2", {**context, "plots_rel": "plots"}, html=True)
    return Report(markdown, html, plot_jobs, unc.cache_out if unc else {}, frames, runs)


def leaderboard_frame(long: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The long frame plus each run's code key, variant and ER."""
    if long.empty or runs.empty:
        return long
    extra = runs[["fingerprint", "code", "variant"]].rename(columns={"code": "code_key"})
    extra = extra.assign(er=runs["er"] if "er" in runs else np.nan)
    return long.merge(extra, on="fingerprint", how="left")


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def _render(template: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=html,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template(template).render(**context)


def _read_cache(results: Path) -> dict[str, Any]:
    path = Path(results) / CACHE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") == CACHE_VERSION and isinstance(data.get("entries"), dict):
            return data["entries"]
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    return {}


def write_outputs(report: Report, options: Options) -> list[Path]:
    """BENCHMARKS.md, leaderboard CSV/Parquet/HTML, plots and the interval cache.

    Plots render in a forked worker process while this one builds and writes the tables
    (where ``fork`` is available; serially otherwise)."""
    res = Path(options.results)
    plots_dir = res / "plots"
    pending = _render_plots_async(report.plot_jobs, plots_dir)
    atomic_write_text(options.out, report.markdown)
    write_table(report.leaderboard(), res / "leaderboard.csv", res / "leaderboard.parquet")
    atomic_write_text(res / "leaderboard.html", report.html)
    written = [options.out, res / "leaderboard.csv", res / "leaderboard.parquet",
               res / "leaderboard.html"]
    if report.cache:
        cache = {"version": CACHE_VERSION, "entries": dict(sorted(report.cache.items()))}
        atomic_write_text(res / CACHE_FILE, json.dumps(cache, indent=1, sort_keys=True) + "\n")
        written.append(res / CACHE_FILE)
    pending()
    return written + [plots_dir / name for name, _ in report.plot_jobs]


_PLOT_JOBS: list[tuple[str, Callable[[Path], Any]]] = []


def _plot_worker(index: int, plots_dir: str) -> None:
    name, job = _PLOT_JOBS[index]
    job(Path(plots_dir) / name)


def _render_plots_async(jobs: list[tuple[str, Callable[[Path], Any]]], plots_dir: Path
                        ) -> Callable[[], None]:
    """Start rendering in forked worker processes (the jobs are closures: they are inherited,
    not pickled); the returned function waits for them and re-raises their errors. Serial
    where ``fork`` is unavailable, torch is loaded (``benchmark.run`` reports in-process) or
    ``BENCH_REPORT_SERIAL`` is set."""
    import multiprocessing as mp

    if not jobs:
        return lambda: None
    # forking a process that has torch's thread pools running is asking for a deadlock
    no_fork = "torch" in sys.modules or bool(os.environ.get("BENCH_REPORT_SERIAL"))
    if "fork" not in mp.get_all_start_methods() or no_fork:
        def serial() -> None:
            for name, job in jobs:
                job(plots_dir / name)

        return serial
    from concurrent.futures import ProcessPoolExecutor

    _PLOT_JOBS[:] = jobs
    workers = max(1, min(2, os.cpu_count() or 1, len(jobs)))
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"))
    futures = [pool.submit(_plot_worker, i, str(plots_dir)) for i in range(len(jobs))]

    def wait() -> None:
        try:
            for f in futures:
                f.result()
        finally:
            pool.shutdown()
            _PLOT_JOBS.clear()

    return wait


def write_table(frame: pd.DataFrame, csv_path: Path, parquet_path: Path) -> None:
    """CSV and Parquet of one frame through Arrow (pandas' CSV writer is ~10× slower)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    atomic_write_bytes(csv_path, buf.getvalue())
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(parquet_path, buf.getvalue())


def check(report: Report, options: Options) -> tuple[bool, str]:
    """(fresh, message): compare the rendered markdown with the file on disk."""
    out = Path(options.out)
    if not out.is_file():
        return False, f"{out}: missing (run `python -m benchmark.report` to generate it)"
    current = out.read_text(encoding="utf-8")
    if current == report.markdown:
        return True, f"{out}: up to date"
    diff = list(difflib.unified_diff(current.splitlines(), report.markdown.splitlines(),
                                     fromfile=f"{out} (on disk)", tofile="rendered from results",
                                     lineterm="", n=1))
    shown = "\n".join(diff[:60]) + ("\n…" if len(diff) > 60 else "")
    return False, (f"{out}: stale — it differs from what the results render "
                   f"(run `python -m benchmark.report`):\n{shown}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=None,
                        help="results directory (default: $BENCH_RESULTS or results/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown output (default: BENCHMARKS.md next to the results dir)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the markdown differs from what the results render")
    parser.add_argument("--baseline-recipe", default="ft",
                        help="recipe whose rows define the ER fit and the paired baseline")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                        help="bootstrap resamples for the intervals (0 disables)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args(argv)
    results = Path(args.results) if args.results is not None else results_root()
    out = Path(args.out) if args.out is not None else results.resolve().parent / "BENCHMARKS.md"
    if args.bootstrap < 0:
        parser.error("--bootstrap must be >= 0")
    options = Options(results, out, args.baseline_recipe, args.bootstrap, args.seed,
                      exports=not args.check)
    report = build_report(options)
    if args.check:
        fresh, message = check(report, options)
        print(message, file=sys.stdout if fresh else sys.stderr)
        return 0 if fresh else 1
    written = write_outputs(report, options)
    print(f"wrote {len(written)} files: {out}, {results / 'leaderboard.csv'} (.parquet, .html), "
          f"{results / 'plots'}/")
    for s in report.skipped:
        print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
