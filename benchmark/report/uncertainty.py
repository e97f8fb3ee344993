"""Bootstrap intervals of the report's statistics, from run records, with a persistent cache.

:class:`RecordBootstrap` matches each run's saved predictions against the prepared ground
truth once and scores the row statistics of :func:`row_statistics` (ID AP, OOD mean, mPC,
rPC: means over seeds) and their paired differences (:func:`paired`) on shared resamples.
:func:`uncertainty_tables` turns them into the family section's tables. Intervals are cached
in ``results/bootstrap_cache.json`` (:func:`read_cache`, :func:`cache_json`), keyed by the
record files' hashes, so ``report --check`` reproduces them without the predictions.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmark.evaluation.matching import match_predictions
from benchmark.report.bootstrap import (
    Bootstrap,
    Interval,
    Statistic,
    difference,
    mean_of,
    mean_of_groups,
    ratio,
)
from benchmark.report.tables import FamilyTable, Table, esc, finite, fmt_ap

CACHE_FILE = "bootstrap_cache.json"


class Unavailable(Exception):
    """Saved predictions or prepared ground truth for a bootstrap are not on this machine."""


TableFn = Callable[[Mapping[str, Any], str], str]  # (run, split) → bootstrap table name
Builder = Callable[[TableFn], tuple[Statistic, list[str]]]  # → (statistic, table names)
CACHE_VERSION = 2  # bump when intervals would change for the same inputs


class RecordBootstrap:
    """Intervals for statistics over runs, from their saved predictions, with a cache.

    A run is a mapping with ``fingerprint``, ``record_sha256``, ``id_split``,
    ``predictions`` ({split: path under the artifacts root}) and ``datasets`` ({split:
    content fingerprint}); optionally ``artifacts_root`` (default: ``$BENCH_ARTIFACTS``) and
    ``side`` (a prefix of its table names, so that two results roots holding the same
    fingerprint can be compared: :mod:`benchmark.compare.verdict`). Predictions are matched
    once against the prepared split's ground truth (:func:`benchmark.data.split.load_split`);
    a split whose content changed since the run is refused. Cache keys hash the statistic,
    the record files, B, the seed and the level, so a cached interval is reused only for
    identical inputs: this lets ``report --check`` reproduce intervals where the
    (git-ignored) predictions are absent.
    """

    def __init__(self, n_resamples: int, seed: int = 0, level: float = 0.95,
                 cache: Mapping[str, Any] | None = None) -> None:
        self.n_resamples = n_resamples
        self.seed = seed
        self.level = level
        self.cache_in = dict(cache or {})
        self.cache_out: dict[str, Any] = {}  # the entries used: what to persist
        self.missing: list[str] = []  # why intervals could not be computed
        self._boot = Bootstrap(n_resamples, seed, level)
        self._gt: dict[str, tuple[Any, str] | None] = {}
        self._available: dict[str, str] = {}  # fingerprint → "" or the reason it is not

    def key(self, stat: str, runs: Sequence[Mapping[str, Any]]) -> str:
        payload = {"v": CACHE_VERSION, "stat": stat, "n": self.n_resamples, "seed": self.seed,
                   "level": self.level, "runs": [r["record_sha256"] for r in runs]}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def interval(self, stat: str, runs: Sequence[Mapping[str, Any]], build: Builder,
                 *, paired: bool = False) -> Interval | None:
        """The cached or computed interval of one statistic; None (reason in ``missing``)
        when the inputs are not available."""
        key = self.key(stat, runs)
        if key in self.cache_in:
            self.cache_out[key] = self.cache_in[key]
            return Interval.from_json(self.cache_in[key])
        try:
            for run in runs:
                self._precheck(run)
            statistic, names = build(self._table)
        except Unavailable as e:
            self.missing.append(str(e))
            return None
        iv = self._boot.interval(statistic, names, paired_null=paired)
        self.cache_out[key] = iv.to_json()
        return iv

    def _precheck(self, run: Mapping[str, Any]) -> None:
        """Fail fast (once per run) when its predictions are not on this machine."""
        fp = _run_name(run)
        if fp not in self._available:
            preds = run["predictions"]
            first = preds.get(run["id_split"]) or next(iter(preds.values()), None)
            if not first:
                self._available[fp] = f"{fp}: the record lists no saved predictions"
            elif not (_artifacts(run) / first).is_file():
                self._available[fp] = f"predictions not found: `{first}` (under the artifacts root)"
            else:
                self._available[fp] = ""
        if self._available[fp]:
            raise Unavailable(self._available[fp])

    def _table(self, run: Mapping[str, Any], split: str) -> str:
        from benchmark.errors import DataError
        from benchmark.evaluation.loading import validate_predictions

        name = f"{_run_name(run)}:{split}"
        if name in self._boot:
            return name
        rel = run["predictions"].get(split)
        if not rel:
            raise Unavailable(f"{run['fingerprint']}: no saved predictions for `{split}`")
        path = _artifacts(run) / rel
        gt = self._ground_truth(split, run["datasets"].get(split))
        try:
            preds = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(preds, list):
                raise DataError(f"{rel}: expected a list of detections")
            validate_predictions(preds, gt, rel)
        except FileNotFoundError:
            raise Unavailable(f"predictions not found: `{rel}` (under the artifacts root)"
                              ) from None
        except (OSError, json.JSONDecodeError, DataError) as e:
            raise Unavailable(f"predictions unusable: `{rel}`: {e}") from None
        self._boot.add(name, match_predictions(gt, preds))
        return name

    def _ground_truth(self, split: str, recorded: str | None) -> Any:
        from benchmark.data.split import resolve_split
        from benchmark.errors import DataError

        if split not in self._gt:
            try:
                s = resolve_split(split, check_images=False)
                self._gt[split] = (s.split.coco, s.fingerprint)
            except DataError:
                self._gt[split] = None
        entry = self._gt[split]
        if entry is None:
            raise Unavailable(f"ground truth for `{split}` is not prepared on this machine")
        coco, fp = entry
        if recorded and recorded != fp:
            raise Unavailable(f"`{split}` changed since the run (dataset fingerprint differs)")
        return coco


def _run_name(run: Mapping[str, Any]) -> str:
    return f"{run.get('side') or ''}{run['fingerprint']}"


def _artifacts(run: Mapping[str, Any]) -> Path:
    from benchmark.store import artifacts_root

    return Path(run.get("artifacts_root") or artifacts_root())


def row_statistics(runs: Sequence[Mapping[str, Any]], corr_columns: Sequence[str]
                   ) -> dict[str, Builder]:
    """Builders of a row's statistics over its runs (seeds): ``AP`` (ID), ``OOD mean``,
    ``mPC`` and ``rPC``, each the mean over seeds as the table shows it.

    ``corr_columns`` are the runs' ``corr/<name>/<severity>`` keys; a run lists a condition
    when its value there is finite. Split names are resolved only when a builder runs.
    """
    from benchmark.spec import corrupted_split_name

    def splits(run: Mapping[str, Any]) -> dict[str, Any]:
        base = run.get("corruption_base") or None
        names = []
        if base:
            for c in corr_columns:
                v = run.get(c)
                if v is not None and math.isfinite(v):
                    name, sev = c[len("corr/"):].rsplit("/", 1)
                    order = run.get("corruption_channel_order") or "rgb"
                    names.append(corrupted_split_name(base, name, int(sev), order))
        ood = run["ood_splits"]
        return {"id": run["id_split"], "clean": base, "corrupted": sorted(names),
                "ood": sorted(json.loads(ood) if isinstance(ood, str) else ood)}

    def per() -> list[tuple[dict[str, Any], Mapping[str, Any]]]:
        return [(splits(r), r) for r in runs]

    def same(key: str) -> list[str]:
        p = per()
        first = p[0][0][key]
        if not first or any(s[key] != first for s, _ in p):
            raise Unavailable(f"the row's runs were not evaluated on the same {key} splits")
        return first

    def build_ap(table: TableFn) -> tuple[Statistic, list[str]]:
        names = [table(r, s["id"]) for s, r in per()]
        return mean_of(names), names

    def build_ood(table: TableFn) -> tuple[Statistic, list[str]]:
        groups = [[table(r, d) for _, r in per()] for d in same("ood")]
        return mean_of_groups(groups), [n for g in groups for n in g]

    def conditions(table: TableFn) -> tuple[list[list[str]], list[str]]:
        groups = [[table(r, c) for _, r in per()] for c in same("corrupted")]
        return groups, [table(r, s["clean"]) for s, r in per()]

    def build_mpc(table: TableFn) -> tuple[Statistic, list[str]]:
        groups, _ = conditions(table)
        return mean_of_groups(groups), [n for g in groups for n in g]

    def build_rpc(table: TableFn) -> tuple[Statistic, list[str]]:
        groups, clean = conditions(table)
        return (ratio(mean_of_groups(groups), mean_of(clean)),
                [n for g in groups for n in g] + clean)

    out: dict[str, Builder] = {"AP": build_ap}
    if any(r["ood_splits"] not in ("[]", [], (), None) for r in runs):
        out["OOD mean"] = build_ood
    if corr_columns and all(r.get("corruption_base") for r in runs):
        out["mPC"] = build_mpc
        out["rPC"] = build_rpc
    return out


def paired(a: Builder, b: Builder) -> Builder:
    """Builder of statistic(a) − statistic(b), both on the same resampled images."""

    def build(table: TableFn) -> tuple[Statistic, list[str]]:
        fa, na = a(table)
        fb, nb = b(table)
        return difference(fa, fb), [*na, *nb]

    return build


def read_cache(results: Path) -> dict[str, Any]:
    """The cached intervals of ``results/bootstrap_cache.json`` ({} when absent or stale)."""
    path = Path(results) / CACHE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") == CACHE_VERSION and isinstance(data.get("entries"), dict):
            return data["entries"]
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    return {}


def cache_json(entries: Mapping[str, Any]) -> str:
    """The cache file's text for ``entries``."""
    cache = {"version": CACHE_VERSION, "entries": dict(sorted(entries.items()))}
    return json.dumps(cache, indent=1, sort_keys=True) + "\n"


# ---- the family section's interval tables ---------------------------------------------------
def _iv_text(iv: Any, *, signed: bool = False) -> str:
    """``"44.6 [43.1, 46.0]"`` in percent / AP points; "—" without an interval."""
    if iv is None or not finite(iv.estimate):
        return "—"
    if not finite(iv.low):
        return fmt_ap(iv.estimate, signed=signed)
    return (f"{fmt_ap(iv.estimate, signed=signed)} [{fmt_ap(iv.low, signed=signed)}, "
            f"{fmt_ap(iv.high, signed=signed)}]")


def p_floor(n_resamples: int) -> float:
    """The smallest two-sided p-value B resamples can give (+1 correction): 2 / (B + 1)."""
    return min(1.0, 2.0 / (n_resamples + 1))


def floor_text(floor: float) -> str:
    """The floor rounded up to one significant digit: 2/1001 → "0.002"."""
    digits = max(0, -math.floor(math.log10(floor)))
    bound = math.ceil(floor * 10 ** digits - 1e-9) / 10 ** digits  # 2/201 → 0.010
    return f"{bound:.{max(0, -math.floor(math.log10(bound) + 1e-9))}f}"  # → "0.01"


def _p_text(iv: Any) -> str:
    """The p-value; at the resampling floor (no resample crossed 0) ``< 0.002`` for B =
    1000, never an exact-looking number."""
    if iv is None or iv.p_value is None or not finite(iv.p_value):
        return "—"
    floor = p_floor(int(iv.n_resamples))
    if iv.p_value <= floor * (1 + 1e-9):
        return f"< {floor_text(floor)}"
    return f"{iv.p_value:.3f}" if iv.p_value >= 0.001 else "< 0.001"


def _row_runs(fb: FamilyTable, r: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [fb.run_dicts[fp] for fp in sorted(r["fingerprints"])]


Gains = dict[tuple[str, str], tuple[float, float, float]]


def uncertainty_tables(fb: FamilyTable, unc: Any
                       ) -> tuple[Table | None, Table | None, list[str], Gains]:
    """Row intervals, paired comparisons against the baseline recipe, and the paired gains
    per (backbone, recipe) for the gain plot. ``unc`` is a :class:`RecordBootstrap`
    (None: bootstrap disabled)."""
    o = fb.options
    gains: Gains = {}
    if unc is None:
        return None, None, ["Bootstrap intervals disabled (`--bootstrap 0`)."], gains
    tag = " (COCO)" if fb.fam.voc else ""  # intervals are for COCO-protocol AP
    t = Table(["#", "Backbone", "Recipe", f"ID AP{tag} [95% CI]", f"OOD mean{tag} [95% CI]",
               f"mPC{tag} [95% CI]", "rPC % [95% CI]"])
    headline = "mPC" if fb.fam.headline == "mPC" else "OOD mean"
    # the headline, mPC where the family has corruptions too, and ID AP
    compared = [headline, *(["mPC"] if fb.fam.corruption and headline != "mPC" else []), "AP"]
    paired_table = Table(["Backbone", "Recipe", "vs",
                          *(h for name in compared for h in (
                              f"Δ {'ID AP' if name == 'AP' else name}{tag} [95% CI]", "p"))])
    any_iv = False
    unc.missing = []
    by_rank: dict[int, dict[str, Builder]] = {}
    for _, r in fb.rows.iterrows():
        runs = _row_runs(fb, r)
        stats = row_statistics(runs, fb.corr_columns)
        by_rank[int(r["rank"])] = stats
        cells = [str(r["rank"]), esc(r.backbone_display), esc(r.recipe_display)]
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
        cells = [esc(r.backbone_display), esc(r.recipe_display), esc(b.recipe_display)]
        for name in compared:
            if name not in sa or name not in sb:
                cells += ["—", "—"]
                continue
            iv = unc.interval(f"Δ {name}", runs, paired(sa[name], sb[name]), paired=True)
            any_iv = any_iv or iv is not None
            cells += [_iv_text(iv, signed=True), _p_text(iv)]
            if name == headline and iv is not None:
                gains[(r.backbone_display, r.recipe_display)] = (iv.estimate, iv.low, iv.high)
        paired_table.rows.append(cells)
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
                 "backbone); p: two-sided bootstrap p-value of Δ = 0, "
                 f"`< {floor_text(p_floor(o.n_resamples))}` where no resample crossed 0 (the "
                 f"resolution of {o.n_resamples} resamples). Only test images are resampled: "
                 "the intervals say nothing about training noise, and a row of one seed may "
                 "move by more when trained again (`python -m benchmark.compare` judges "
                 "against seed noise).")
    return t, (paired_table if paired_table.rows else None), notes, gains
