"""Published reference numbers in the report: the family's published rows next to the
reproduced ones, and RGN per backbone next to the published RGN values.

The published rows of a family are part of its entry (:attr:`benchmark.families.Family.published`);
published RGN values are per backbone and live here. Values are fractions like every AP in
the suite (the papers print percentages).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from benchmark.evaluation.summary_metrics import SUMMARY_METRICS
from benchmark.families import (
    CONVNEXT_B_21K,
    EFFB2_JFT,
    FAMILIES,
    R50_IG,
)
from benchmark.models.checkpoints import catalogue
from benchmark.report.aggregation import format_cell
from benchmark.report.cards import row_comparison
from benchmark.report.tables import FamilyTable, Table, esc, finite, fmt_ap

SAITO_RGN = 'Saito et al., "Mind the Backbone": mean RGN as their code computes it'


@dataclass(frozen=True)
class PublishedRGN:
    backbone: str
    rgn: float
    source: str
    weights_key: str  # a catalogue entry's publication key (as PublishedRow.weights_key)


# backbones with a published RGN but no published rows (publication keys of the catalogue)
PUBLISHED_RGN: tuple[PublishedRGN, ...] = (
    PublishedRGN("ResNet-50 (Instagram SWSL)", 1.34, SAITO_RGN, R50_IG),
    PublishedRGN("ConvNeXt-B (IN-22k)", 0.13, SAITO_RGN, CONVNEXT_B_21K),
    PublishedRGN("EfficientNet-B2 (Noisy Student, JFT)", 0.06, SAITO_RGN, EFFB2_JFT),
    PublishedRGN("ResNet-50 (MSRA)", 0.299, SAITO_RGN, "msra_r50"),
    PublishedRGN("ResNet-101 (MSRA)", 0.302, SAITO_RGN, "msra_r101"),
    PublishedRGN("ResNet-50 (AugMix)", 0.574, SAITO_RGN, "augmix_r50"),
    PublishedRGN("ConvNeXt-B (IN-1k)", 0.115, SAITO_RGN, "convnext_b_1k"),
    PublishedRGN("EfficientNet-B0 (Noisy Student, JFT)", 0.065, SAITO_RGN, "effb0_ns"),
)


@functools.lru_cache(maxsize=256)
def publication_keys(backbone: str, weights: str) -> frozenset[str]:
    """The publication keys a run's (backbone, weights) stands for, by catalogue identity:
    a catalogue name, a sha256 (64 hex digits), or a file under the weights folder whose
    sha256 is a catalogue entry's. The entry must be a checkpoint of ``backbone``."""
    entry = catalogue.lookup(weights or "")
    if entry is None and re.fullmatch(r"[0-9a-f]{64}", weights or ""):
        entry = catalogue.by_sha256(weights)
    if entry is None and weights and weights not in ("imagenet", "none"):
        path = catalogue.weights_path(weights)
        if path is not None and path.is_file():
            entry = catalogue.by_sha256(catalogue.file_sha256(path))
    if entry is None or entry.architecture != backbone:
        return frozenset()
    return frozenset(entry.publication)


def rgn_ood_change() -> list[tuple[str, float, float]]:
    """(backbone, published RGN, published OOD-mean change FT − DP) where both are published."""
    rows = [r for f in FAMILIES.in_order() for r in f.published]
    out = []
    for g in PUBLISHED_RGN:
        by_recipe = {r.recipe: r for r in rows if r.backbone == g.backbone
                     and "ood_mean" in r.values}
        if "ft" in by_recipe and "dp" in by_recipe:
            delta = by_recipe["ft"].values["ood_mean"] - by_recipe["dp"].values["ood_mean"]
            out.append((g.backbone, g.rgn, delta))
    return out


# ---- the family's published rows -------------------------------------------------------------
def published_table(fb: FamilyTable) -> tuple[Table | None, list[str]]:
    refs = list(fb.fam.published)
    if not refs:
        return None, []
    keys = list(refs[0].values)
    domain_col = {}
    for k in keys:
        split = next((s for s in fb.ood_splits if k in s.lower()), None)
        domain_col[k] = split
    header = ["Backbone (published)", "Recipe"]
    header += [SUMMARY_METRICS.get(k).label if k in SUMMARY_METRICS else k.capitalize()
               for k in keys]
    header += ["matched reproduced row", "protocol card", "source"]
    t = Table(header, text_columns=2)
    notes: list[str] = []
    dagger = False
    for ref in refs:
        match = None
        for _, r in fb.rows.iterrows():
            if r.recipe == ref.recipe and ref.weights_key in publication_keys(r.backbone,
                                                                             r.weights):
                match = r
                break
        cells = [f"{esc(ref.backbone)} — *published*", ref.recipe]
        comparable, verdict = (row_comparison(fb, match, ref.card) if match is not None
                               else (False, "—"))
        for k in keys:
            pv = ref.values[k]
            text = fmt_ap(pv) + (" (derived)" if k in ref.derived else "")
            if match is not None:
                col, mark = _reproduced_key(k, domain_col, fb)
                mean = match.get(f"{col}|mean") if col else None
                if finite(mean):
                    dagger = dagger or bool(mark)
                    text += f" / {fmt_ap(mean)}{mark}"
                    if comparable:  # a Δ only between like protocols (the card column)
                        text += f" (Δ {fmt_ap(float(mean) - pv, signed=True)})"
            cells.append(text)
        cells.append(f"#{match['rank']} {esc(fb.row_label(match))}" if match is not None
                     else "none")
        cells.append(esc(verdict))
        cells.append(esc(ref.source))
        t.rows.append(cells)
    notes.append("Cells: published value, then `/ reproduced (Δ reproduced − published)` for "
                 "the best-ranked reproduced row with the same family, backbone and recipe. "
                 "The Δ is shown only where the row's runs carry the publication's protocol "
                 "card (engine, input sizes, schedule, evaluator, corruption sweep); otherwise "
                 "the `protocol card` column names the fields that differ, run≠published.")
    if dagger:
        notes.append("† reproduced with the COCO protocol, published with the VOC protocol: "
                     "not like for like.")
    return t, notes


def _reproduced_key(key: str, domain_col: Mapping[str, str | None], fb: FamilyTable
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


# ---- RGN per backbone --------------------------------------------------------------------------
# RGN is recorded at the start weights of each run's training stage; for dp_ft that is the DP
# checkpoint, where "Mind the Backbone" measures it. Per backbone, the first recipe here that
# has RGN values stands for the backbone (published deltas, the RGN-vs-OOD figure).
RGN_RECIPES = ("dp_ft", "dp", "ft")
_RGN_FORMAT = {"scale": SUMMARY_METRICS.get("rgn").fmt.scale,
               "digits": SUMMARY_METRICS.get("rgn").fmt.digits}


def rgn_source(g: pd.DataFrame) -> pd.DataFrame:
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
        ref = next((p for p in PUBLISHED_RGN if p.weights_key in publication_keys(name, weights)),
                   None)
        rep = rgn_source(g)
        rep_recipe = rep.recipe.iloc[0] if not rep.empty else None
        for recipe, r in g.groupby("recipe", sort=True):
            rgn = r["rgn"].astype(float)
            l2 = r["rgn_l2"].astype(float) if "rgn_l2" in r else pd.Series(dtype=float)
            cells = [esc(label), f"`{recipe}`",
                     format_cell(rgn.mean(), rgn.std(ddof=1), rgn.count(), **_RGN_FORMAT),
                     format_cell(l2.mean(), l2.std(ddof=1), l2.count(), **_RGN_FORMAT),
                     str(len(r))]
            at_dp = "rgn_at" in r and bool((r["rgn_at"] == "dp_checkpoint").all())
            if ref is not None and recipe == rep_recipe and at_dp:
                matched.add(ref.backbone)
                cells += [f"{ref.rgn:.3f} (*published*: {esc(ref.backbone)})",
                          f"{rgn.mean() - ref.rgn:+.3f}", esc(ref.source)]
            elif ref is not None and recipe == rep_recipe:
                matched.add(ref.backbone)
                cells += [f"{ref.rgn:.3f} (*published*: {esc(ref.backbone)})",
                          "no comparable measurement", esc(ref.source)]
            else:
                cells += ["—", "—", ""]
            t.rows.append(cells)
    for ref in PUBLISHED_RGN:
        if ref.backbone not in matched:
            t.rows.append([f"{esc(ref.backbone)} — *published*", "—", "—", "—", "0",
                           f"{ref.rgn:.3f}", "—", esc(ref.source)])
    notes = [
        "Each run records RGN at the start weights of its training stage: for `dp_ft` (and "
        "the other recipes that start from DP) that is the DP checkpoint, where the paper "
        "measures it; for `ft` and `dp` the pretrained backbone with a fresh decoder. A "
        "published value gets a Δ only from RGN measured at the DP checkpoint; otherwise the "
        "row says \"no comparable measurement\"."
    ]
    return t, notes
