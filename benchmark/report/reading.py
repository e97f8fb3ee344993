"""What makes a family section read at a glance: the generated "how to read this" paragraph
with the finding its numbers support, the compact per-corruption table, and the footnote
that spells out the full spec behind each short row name.

Every sentence is generated from the rows (and the paired-bootstrap gains where they were
computed); nothing here is written by hand for a particular result.
"""

from __future__ import annotations

from collections.abc import Mapping

from benchmark.report.names import corruption_short, recipe_display
from benchmark.report.tables import FamilyTable, Table, esc, finite, fmt_ap

Gains = Mapping[tuple[str, str], tuple[float, float, float]]  # (backbone, recipe) → Δ, low, high


def spec_table(fb: FamilyTable) -> Table:
    """The full specification behind each row's display names (the footnote)."""
    t = Table(["#", "backbone[weights]", "recipe(parameters)", "engine", "seeds", "runs"],
              text_columns=6)
    for _, r in fb.rows.iterrows():
        t.rows.append([str(r["rank"]), f"`{esc(r.backbone_label)}`", f"`{esc(r.recipe_label)}`",
                       esc(r.engine), ", ".join(str(s) for s in r.seeds),
                       ", ".join(f"`{f[:12]}`" for f in r.fingerprints)])
    return t


def corruption_table(fb: FamilyTable) -> Table | None:
    """One compact table: rows = the leaderboard's rows, columns = corruptions (AP averaged
    over the severities evaluated), then mPC."""
    if not fb.corruptions:
        return None
    sev = ", ".join(map(str, fb.severities))
    t = Table(["#", "Backbone", "Recipe", *[corruption_short(c) for c in fb.corruptions], "mPC"])
    t.tooltips = ["", "", "", *[f"{c}: AP averaged over severities {sev}"
                                for c in fb.corruptions], "mean AP over all conditions"]
    for _, r in fb.rows.iterrows():
        t.rows.append([str(r["rank"]), esc(r.backbone_display), esc(r.recipe_display),
                       *[fmt_ap(v) for v in fb.corruption_means(r)], fmt_ap(r.get("mPC|mean"))])
        t.row_titles.append(fb.full_spec(r))
    return t


def _points(v: float) -> str:
    return fmt_ap(v, signed=True)


def seed_count(counts: set[int]) -> str:
    """"1 seed", "3 seeds", "1–2 seeds": the runs behind the compared rows."""
    lo, hi = min(counts), max(counts)
    return f"{lo} seed{'s' if lo != 1 else ''}" if lo == hi else f"{lo}–{hi} seeds"


def findings(fb: FamilyTable, gains: Gains) -> list[str]:
    """One sentence per recipe compared with the baseline recipe on the headline metric, best
    recipe first: on how many backbones it is ahead, on how many the paired interval excludes
    0, and by how much. The interval resamples test images only, so the sentence says so and
    how many seeds the rows hold: it is no evidence about training noise ("significant" is
    not said)."""
    base = fb.options.baseline_recipe
    h = f"{fb.fam.headline}|mean"
    per: dict[str, list[tuple[float, float, float, str]]] = {}
    seeds: dict[str, set[int]] = {}  # per recipe: seeds per compared row (the fewer side)
    for _, r in fb.rows.iterrows():
        b = None if r.recipe == base else fb.baseline_row(r)
        if b is None or not finite(r.get(h)) or not finite(b.get(h)):
            continue
        est, low, high = gains.get((r.backbone_display, r.recipe_display),
                                   (float(r[h]) - float(b[h]), float("nan"), float("nan")))
        per.setdefault(r.recipe_display, []).append((est, low, high, r.backbone_display))
        seeds.setdefault(r.recipe_display, set()).add(min(len(r.seeds), len(b.seeds)))
    headline = fb.headline_label
    base_name = recipe_display(base)
    ranked = sorted(per.items(), key=lambda kv: (-sum(x[0] for x in kv[1]) / len(kv[1]), kv[0]))
    out = []
    for recipe, ds in ranked:
        n, ahead = len(ds), sum(d[0] > 0 for d in ds)
        with_ci = [d for d in ds if finite(d[1])]
        unit = "backbone" if n == 1 else "backbones"
        verb = "beats" if ahead else "does not beat"
        count = f"for {ahead} of {n} {unit}" if ahead else f"on any of {n} {unit}"
        text = f"{recipe} {verb} {base_name} on {headline} {count}"
        if with_ci:
            up, down = sum(d[1] > 0 for d in with_ci), sum(d[2] < 0 for d in with_ci)
            parts = ([f"above 0 on {up}"] if up else []) + ([f"below 0 on {down}"] if down
                                                            else [])
            what = f"test-set bootstrap, {seed_count(seeds[recipe])}"
            text += (f" (paired 95% CI {', '.join(parts)}; {what})" if parts
                     else f" (no difference the paired 95% CI resolves; {what})")
        best = max(ds, key=lambda d: d[0])
        shown = _points(best[0]) + (f" [{_points(best[1])}, {_points(best[2])}]"
                                    if finite(best[1]) else "")
        if n == 1:
            text += f": {shown} points"
        else:
            worst = min(ds, key=lambda d: d[0])
            text += (f": {_points(worst[0])} to {_points(best[0])} points (largest on "
                     f"{best[3]}, {shown})")
        out.append(text + ".")
    return out


def how_to_read(fb: FamilyTable, gains: Gains) -> str:
    """The family's "how to read this" paragraph: what a row is, what the headline metric
    is, what n and ± mean, then the findings."""
    note = next((c.note for c in fb.columns if c.key == fb.fam.headline and c.note), "")
    what = note.split(": ", 1)[1] if ": " in note else ""
    text = (f"**How to read this.** Each row is one backbone × fine-tuning recipe, ranked by "
            f"**{fb.headline_label}**" + (f" ({what})" if what else "")
            + "; higher is better, AP in percent. `n` is the number of runs (seeds) in a row; "
            "± is their standard deviation, shown only where n > 1 (test-set intervals are in "
            "the Uncertainty table). Short names are spelled out under 'Full specification'.")
    found = findings(fb, gains)
    if found:
        text += " **Finding:** " + " ".join(found)
    elif fb.options.baseline_recipe not in set(fb.rows.recipe):
        text += (f" No finding: no row uses the baseline recipe "
                 f"`{fb.options.baseline_recipe}` to compare with.")
    return text
