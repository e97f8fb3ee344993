"""Did a results root reproduce another? The verdict of ``python -m benchmark.compare`` and of
the demo command (``bash scripts/dev.sh demo``).

Records of the *reference* root (A) and the *candidate* root (B) are matched by fingerprint
first, then — for the rest — by configuration: the spec without its dataset content
fingerprints and bookkeeping keys (family, engine, backbone, recipe + parameters, schedule,
seed, split names). A different CPU type can generate different pixels for the demo data
(OpenCV's stylisation is SIMD-dependent), which changes the content fingerprints and so the
run fingerprint of an otherwise identical run; the match says which way it was made and what
differs (versions, device, threads, the CPU: ``CPU differs: isa.aten avx512≠avx2``).

Each judged Δ (ID AP, OOD mean, mPC, rPC) meets two yardsticks: the *test-set noise* h, the
half-width of the reference's 95% bootstrap interval over test images (the candidate's where
the reference has none: neither cache nor predictions), and the *seed noise* √(h² + b²), b the
95% prediction bound for the difference of two trainings from the reference's between-seed
spread of the cell, or pooled over its family and engine (:mod:`~benchmark.compare.seed_noise`
defines and justifies both). Trainings whose arithmetic differs in the last bit (another CPU
or GPU type) differ about as much as two seeds do, which h does not contain. Per pair:

* **bit-identical** — metrics, summary and RGN are equal to the last bit;
* **reproduced within test-set noise** — every |Δ| ≤ h;
* **reproduced within seed noise** — some |Δ| > h, every |Δ| ≤ √(h² + b²);
* **NOT reproduced: beyond seed noise** — some |Δ| > √(h² + b²);
* **undetermined: 1 seed, training noise unknown** — some |Δ| > h and the reference has no b
  (one seed of the cell, none pooled): never "NOT reproduced", for training noise alone may
  explain it;
* **undetermined: numbers differ and no interval is available** — neither yardstick.

The first three count as reproduced. :attr:`Comparison.status`: "reproduced" (every run, none
on one side only), "undetermined" (no shortfall but undetermined runs), else "NOT reproduced".
Where both sides' saved predictions are present the table also shows the paired-bootstrap
interval of each Δ (both runs scored on the same resampled images) — information, not the
criterion: trainings on different hardware are different models, and the question is whether
they differ by more than the test set and training noise explain.

It is over 400 lines because matching, judging and the printed table of one comparison
share the per-pair state (:class:`Match`); the yardsticks live in
:mod:`benchmark.compare.seed_noise` and :mod:`benchmark.report.uncertainty`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.compare.pairing import CPU_DIFFERS, datasets_of, differences, pair, run_label
from benchmark.compare.seed_noise import SeedNoise, SeedNoiseTable, classify, combined, describe
from benchmark.compare.seed_noise import number as _number
from benchmark.report.aggregation import canonical
from benchmark.report.bootstrap import Interval
from benchmark.report.records import Record, Skipped, load_records
from benchmark.report.uncertainty import (
    RecordBootstrap,
    Unavailable,
    paired,
    read_cache,
    row_statistics,
)

# summary key → (label, bootstrap statistic of benchmark.report.uncertainty.row_statistics)
JUDGED = {"id_ap": ("ID AP", "AP"), "ood_mean": ("OOD mean", "OOD mean"),
          "mPC": ("mPC", "mPC"), "rPC": ("rPC %", "rPC")}

BIT_IDENTICAL = "bit-identical"
WITHIN = "reproduced within test-set noise"
WITHIN_SEED = "reproduced within seed noise"
BEYOND = "NOT reproduced: beyond seed noise"
UNDETERMINED_SEED = "undetermined: 1 seed, training noise unknown"
UNDETERMINED = "undetermined: numbers differ and no interval is available"
REPRODUCED = (BIT_IDENTICAL, WITHIN, WITHIN_SEED)

# Comparison.status
STATUS_REPRODUCED, STATUS_UNDETERMINED, STATUS_NOT = ("reproduced", "undetermined",
                                                      "NOT reproduced")


@dataclass(frozen=True)
class Root:
    """A results root and the artifacts root its records' predictions are under."""

    results: Path
    artifacts: Path

    @classmethod
    def at(cls, results: Path, artifacts: Path | None = None) -> Root:
        """``artifacts`` defaults to ``artifacts/`` next to the results directory (the
        layout of ``results/`` + ``artifacts/`` and of ``runs/demo/{results,artifacts}``)."""
        results = Path(results)
        return cls(results, Path(artifacts) if artifacts else results.resolve().parent
                   / "artifacts")


@dataclass
class Delta:
    key: str
    label: str
    reference: float
    candidate: float
    noise: float | None = None  # half-width of the 95% interval the Δ is judged against
    noise_from: str = ""  # "reference" | "candidate" | ""
    paired: Interval | None = None
    seed: SeedNoise | None = None  # the reference cell's training-noise bound

    @property
    def delta(self) -> float:
        return self.candidate - self.reference

    @property
    def within(self) -> bool | None:
        """Within test-set noise (None: no interval)."""
        if self.delta == 0:
            return True
        if self.noise is None:
            return None
        return abs(self.delta) <= self.noise

    @property
    def yardstick(self) -> float | None:
        """√(test² + seed²), the seed-noise yardstick; None without a seed bound."""
        return None if self.seed is None else combined(self.noise, self.seed.bound)

    @property
    def status(self) -> str:
        """:func:`~benchmark.compare.seed_noise.classify`: test, seed, beyond, 1 seed, …"""
        return classify(self.delta, self.noise, self.seed)


@dataclass
class Match:
    reference: Record
    candidate: Record
    how: str  # "fingerprint" | "configuration"
    differs: list[str] = field(default_factory=list)  # what differs besides the numbers
    identical: bool = False
    deltas: list[Delta] = field(default_factory=list)
    split_max: tuple[float, str] | None = None  # largest |Δ AP| over the per-split APs
    unavailable: list[str] = field(default_factory=list)  # why intervals are missing

    @property
    def verdict(self) -> str:
        if self.identical:
            return BIT_IDENTICAL
        judged = {d.status for d in self.deltas}
        if "beyond" in judged:
            return BEYOND
        if "1 seed" in judged:
            return UNDETERMINED_SEED
        if not judged or "no interval" in judged:
            return UNDETERMINED
        return WITHIN_SEED if "seed" in judged else WITHIN

    @property
    def reproduced(self) -> bool:
        return self.verdict in REPRODUCED


@dataclass
class Comparison:
    reference: Root
    candidate: Root
    matches: list[Match]
    only_reference: list[Record]
    only_candidate: list[Record]
    skipped: list[Skipped]

    @property
    def ok(self) -> bool:
        """Everything reproduced: every record matched, each bit-identical or within test-set
        or seed noise."""
        return self.status == STATUS_REPRODUCED

    @property
    def status(self) -> str:
        """"reproduced"; "undetermined" where the only shortfall is undetermined runs;
        else "NOT reproduced" (a run beyond seed noise, one side's runs missing, nothing
        matched)."""
        if not self.matches or self.only_reference or self.only_candidate:
            return STATUS_NOT
        if any(m.verdict == BEYOND for m in self.matches):
            return STATUS_NOT
        if all(m.reproduced for m in self.matches):
            return STATUS_REPRODUCED
        return STATUS_UNDETERMINED


# ---- matching ---------------------------------------------------------------------------------
def match_records(reference: Sequence[Record], candidate: Sequence[Record],
                  across: Sequence[str] = ()) -> tuple[list[Match], list[Record], list[Record]]:
    """(matches, reference only, candidate only): :func:`~benchmark.compare.pairing.pair`."""
    pairs, only_a, only_b = pair(reference, candidate, across)
    return [Match(a, b, how, differences(a, b)) for a, b, how in pairs], only_a, only_b


# ---- numbers ----------------------------------------------------------------------------------
def identical(a: Record, b: Record) -> bool:
    return all(canonical(a.data.get(k)) == canonical(b.data.get(k))
               for k in ("metrics", "summary", "rgn"))


def _split_max(a: Record, b: Record) -> tuple[float, str] | None:
    ma, mb = a.data["metrics"], b.data["metrics"]
    best: tuple[float, str] | None = None
    for split in sorted(set(ma) & set(mb)):
        x, y = _number(ma[split].get("AP")), _number(mb[split].get("AP"))
        if x is not None and y is not None and (best is None or abs(y - x) > abs(best[0])):
            best = (y - x, split)
    return best


def bootstrap_run(record: Record, root: Root, side: str) -> dict[str, Any]:
    """The mapping :class:`~benchmark.report.uncertainty.RecordBootstrap` reads for a run."""
    d = record.data
    spec = d["spec"]
    run: dict[str, Any] = {
        "fingerprint": record.fingerprint, "record_sha256": record.sha256,
        "id_split": spec["id_split"], "ood_splits": list(spec.get("ood_splits") or []),
        "corruption_base": (spec.get("corruption") or {}).get("base") or "",
        "corruption_channel_order": (spec.get("corruption") or {}).get("channel_order") or "rgb",
        "predictions": dict((d.get("artifacts") or {}).get("predictions") or {}),
        "datasets": datasets_of(record), "artifacts_root": str(root.artifacts), "side": side,
    }
    for name, by_sev in ((d.get("summary") or {}).get("corruption") or {}).items():
        for sev, v in (by_sev or {}).items():
            run[f"corr/{name}/{int(sev)}"] = _number(v)
    return run


def _corr_columns(run: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in run if k.startswith("corr/") and run[k] is not None)


def _half_width(iv: Interval | None) -> float | None:
    if iv is None or not (math.isfinite(iv.low) and math.isfinite(iv.high)):
        return None
    return (iv.high - iv.low) / 2.0


def judge(m: Match, reference: Root, candidate: Root, boot: RecordBootstrap | None,
          seeds: SeedNoiseTable | None = None) -> None:
    """Fill in the match's Δs, their noise intervals, seed-noise bounds (from ``seeds``, the
    reference's table) and paired intervals."""
    a, b = m.reference, m.candidate
    m.identical = identical(a, b)
    m.split_max = _split_max(a, b)
    sa, sb = a.data.get("summary") or {}, b.data.get("summary") or {}
    ra, rb = bootstrap_run(a, reference, "A:"), bootstrap_run(b, candidate, "B:")
    stats_a = row_statistics([ra], _corr_columns(ra))
    stats_b = row_statistics([rb], _corr_columns(rb))
    for key, (label, stat) in JUDGED.items():
        x, y = _number(sa.get(key)), _number(sb.get(key))
        if x is None or y is None:
            continue
        d = Delta(key, label, x, y, seed=None if seeds is None else seeds.of(a, key))
        m.deltas.append(d)
        if m.identical or boot is None or stat not in stats_a or stat not in stats_b:
            continue
        before = len(boot.missing)
        for side, run, stats in (("reference", ra, stats_a), ("candidate", rb, stats_b)):
            hw = _half_width(boot.interval(stat, [run], stats[stat]))
            if hw is not None:
                d.noise, d.noise_from = hw, side
                break
        if d.delta != 0:
            d.paired = boot.interval(f"Δ {stat}", [rb, ra], paired(stats_b[stat], stats_a[stat]),
                                     paired=True)
        m.unavailable += boot.missing[before:]


def compare_roots(reference: Root, candidate: Root, *, n_resamples: int = 1000, seed: int = 0,
                  level: float = 0.95, across: Sequence[str] = ()) -> Comparison:
    """Match the records of two results roots and judge every pair. The reference's interval
    cache (``bootstrap_cache.json``, written by ``python -m benchmark.report`` with the same
    ``n_resamples`` / ``seed``) stands in for predictions that are not on this machine. The
    seed-noise bounds come from the reference's records, at ``level``."""
    la, lb = load_records(reference.results), load_records(candidate.results)
    matches, only_a, only_b = match_records(la.records, lb.records, across)
    seeds = SeedNoiseTable(la.records, level)
    boot = None
    if n_resamples > 0:
        cache = {**read_cache(candidate.results), **read_cache(reference.results)}
        boot = RecordBootstrap(n_resamples, seed, level, cache)
    for m in matches:
        try:
            judge(m, reference, candidate, boot, seeds)
        except Unavailable as e:  # a builder needing splits the records do not name
            m.unavailable.append(str(e))
    matches.sort(key=lambda m: m.reference.fingerprint)
    return Comparison(reference, candidate, matches, only_a, only_b, la.skipped + lb.skipped)


# ---- text -------------------------------------------------------------------------------------
def _pts(v: float | None, signed: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    x = 100.0 * v
    if round(x, 2) == 0:
        x = 0.0
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _interval(iv: Interval | None) -> str:
    if iv is None or not (math.isfinite(iv.low) and math.isfinite(iv.high)):
        return "—"
    return f"[{_pts(iv.low, True)}, {_pts(iv.high, True)}]"


_WITHIN_COLUMN = {"test": "test", "seed": "seed", "beyond": "NO", "1 seed": "?",
                  "no interval": "?"}


def _match_lines(m: Match, ra: str, rb: str) -> list[str]:
    fa, fb = m.reference.fingerprint, m.candidate.fingerprint
    name = fa[:12] if fa == fb else f"{fa[:12]} → {fb[:12]}"
    mark = "✓" if m.reproduced else "?" if m.verdict.startswith("undetermined") else "✗"
    lines = [f"{mark} {name}  {run_label(m.reference)}: {m.verdict}"]
    cpu = [d for d in m.differs if d.startswith(CPU_DIFFERS)]
    rest = [d for d in m.differs if not d.startswith(CPU_DIFFERS)]
    if m.how != "fingerprint" or rest:
        lines.append(f"    matched by {m.how}"
                     + (" — differs: " + "; ".join(rest) if rest else ""))
    lines += [f"    {d}" for d in cpu]
    if m.identical or not m.deltas:
        return lines
    lines.append(f"    {'metric':<9} {ra[:9]:>9} {rb[:9]:>9} {'Δ':>7} {'±test':>8} {'±seed':>8}"
                 f"  {'paired 95% CI of Δ':<19} within")
    for d in m.deltas:
        noise = "—" if d.noise is None else f"±{100 * d.noise:.2f}"
        if d.noise_from == "candidate":
            noise += "ᶜ"
        seed = "—" if d.yardstick is None else f"±{100 * d.yardstick:.2f}"
        lines.append(f"    {d.label:<9} {_pts(d.reference):>9} {_pts(d.candidate):>9} "
                     f"{_pts(d.delta, True):>7} {noise:>8} {seed:>8}  {_interval(d.paired):<19} "
                     f"{_WITHIN_COLUMN[d.status]}")
    if any(d.status != "test" for d in m.deltas):
        lines.append("    seed noise: " + describe([(d.label, d.seed) for d in m.deltas]))
    if m.split_max is not None:
        v, split = m.split_max
        lines.append(f"    largest |Δ AP| over the {len(m.reference.data['metrics'])} "
                     f"evaluated splits: {_pts(v, True)} (`{split}`)")
    if m.unavailable and any(d.noise is None or d.paired is None for d in m.deltas):
        lines.append(f"    some intervals not available: {sorted(set(m.unavailable))[0]}")
    return lines


def summary_line(c: Comparison, ra: str = "reference", rb: str = "candidate") -> str:
    """``VERDICT: reproduced 13/13 (13 bit-identical, 0 within test-set noise, 0 within seed
    noise)``, else ``VERDICT: NOT reproduced — …`` or ``VERDICT: undetermined — …``."""
    verdicts = [m.verdict for m in c.matches]
    n_ok = sum(v in REPRODUCED for v in verdicts)
    total = len(c.matches) + len(c.only_reference)
    counts = (f"({verdicts.count(BIT_IDENTICAL)} bit-identical, {verdicts.count(WITHIN)} "
              f"within test-set noise, {verdicts.count(WITHIN_SEED)} within seed noise)")
    if c.status == STATUS_REPRODUCED:
        return f"VERDICT: reproduced {n_ok}/{total} {counts}"
    parts = [f"{n_ok}/{total} of {ra} reproduced {counts}"]
    for v, what in ((BEYOND, "beyond seed noise"),
                    (UNDETERMINED_SEED, "undetermined (1 seed, training noise unknown)"),
                    (UNDETERMINED, "undetermined (no interval)")):
        if verdicts.count(v):
            parts.append(f"{verdicts.count(v)} {what}")
    if c.only_reference:
        parts.append(f"{len(c.only_reference)} missing from {rb}")
    if c.only_candidate:
        parts.append(f"{len(c.only_candidate)} only in {rb}")
    return f"VERDICT: {c.status} — " + "; ".join(parts)


def format_comparison(c: Comparison, *, names: tuple[str, str] = ("reference", "candidate")
                      ) -> str:
    """The verdict as text: one block per matched run, the unmatched runs, a summary line."""
    ra, rb = names
    lines = [f"{ra}: {c.reference.results}  ·  {rb}: {c.candidate.results}",
             f"{len(c.matches)} matched run(s) ({sum(m.how == 'fingerprint' for m in c.matches)} "
             f"by fingerprint, {sum(m.how == 'configuration' for m in c.matches)} by "
             "configuration); Δ = " + f"{rb} − {ra}, AP points.", ""]
    for m in c.matches:
        lines += _match_lines(m, ra, rb)
    for side, recs in ((ra, c.only_reference), (rb, c.only_candidate)):
        if recs:
            lines += ["", f"only in {side} ({len(recs)}):"]
            lines += [f"  {r.fingerprint[:12]}  {run_label(r)}" for r in recs]
    for s in c.skipped:
        lines.append(f"skipped {s.path}: {s.reason}")
    lines += ["", "─" * 72, summary_line(c, ra, rb)]
    lines.append("(±test: half-width of the reference's 95% bootstrap interval over test images"
                 ", ᶜ the candidate's; ±seed: √(test² + b²), b = t·s·√2 the 95% bound on two "
                 "trainings' difference from the reference's between-seed SD s)")
    return "\n".join(lines)


def comparison_json(c: Comparison) -> str:
    """The comparison as JSON (for scripts): its status, per match its verdict and Δs."""
    def delta(d: Delta) -> dict[str, Any]:
        return {"metric": d.key, "reference": d.reference, "candidate": d.candidate,
                "delta": d.delta, "noise": d.noise, "noise_from": d.noise_from or None,
                "within": d.within, "paired": None if d.paired is None else d.paired.to_json(),
                "seed_noise": None if d.seed is None else d.seed.to_json(),
                "yardstick": d.yardstick, "status": d.status}

    out = {
        "ok": c.ok,
        "status": c.status,
        "matches": [{"reference": m.reference.fingerprint, "candidate": m.candidate.fingerprint,
                     "label": run_label(m.reference), "matched_by": m.how,
                     "differs": m.differs, "verdict": m.verdict, "reproduced": m.reproduced,
                     "deltas": [delta(d) for d in m.deltas]} for m in c.matches],
        "only_reference": [r.fingerprint for r in c.only_reference],
        "only_candidate": [r.fingerprint for r in c.only_candidate],
    }
    return json.dumps(out, indent=1, sort_keys=True)
