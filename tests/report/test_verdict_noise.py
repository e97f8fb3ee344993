"""The reproduction verdict against training noise (benchmark.compare.seed_noise, .verdict,
python -m benchmark.compare) on hand-written results roots: a Δ beyond test-set noise but
within the reference's seed spread is reproduced, beyond it is not, with one seed it is
undetermined (never "NOT reproduced"), a one-seed cell borrows the pooled spread of its family
and engine, and a pair says when its CPUs differ.

Every record here has the same OOD mean, mPC and rPC (their Δ is 0): only ID AP moves. The
test-set noise of every reference record is a hand-written bootstrap cache entry of half-width
h = 0.01 for each statistic, so the expected yardsticks can be worked out by hand.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from benchmark import compare
from benchmark.compare import verdict as vd
from benchmark.compare.pairing import cpu_difference
from benchmark.compare.seed_noise import SeedNoiseTable
from benchmark.report.records import load_records
from benchmark.report.uncertainty import RecordBootstrap, cache_json
from tests.report.test_frames import make_record, write_record

B = 200  # bootstrap size of the cache entries and of the comparisons
H = 0.01  # test-set noise: half-width of every cached interval
STATS = {"AP": "id_ap", "OOD mean": "ood_mean", "mPC": "mPC", "rPC": "rPC"}
EPYC = {"model": "AMD EPYC 9R14", "pinned": True,
        "isa": {"aten": "avx512", "onednn": "avx512", "blas": "AVX512", "opencv": "baseline"}}
XEON = {"model": "Intel Xeon Platinum 8375C", "pinned": True,
        "isa": {"aten": "avx2", "onednn": "avx2", "blas": "AVX2", "opencv": "baseline"}}


def _record(recipe: str, seed: int, id_ap: float, *, family: str = "demo",
            engine: str = "frcnn_fpn_small", cpu: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    rec = make_record(family=family, recipe=recipe, seed=seed, id_ap=id_ap,
                      ood={"demo_sketch": 0.3}, corruption={"fog": {"3": 0.35}})
    rec["spec"]["engine"] = engine
    rec["fingerprint"] = hashlib.sha256(json.dumps(rec["spec"], sort_keys=True)
                                        .encode()).hexdigest()[:16]
    rec["summary"].update(id_ap=id_ap, P=id_ap, ood_mean=0.3, mPC=0.35, rPC=0.7)
    if cpu is not None:
        rec["provenance"]["cpu"] = cpu
    return rec


def _root(path: Path, records: list[dict[str, Any]], *, cache: bool = True) -> Path:
    """A results root of ``records``; with ``cache``, every record's four statistics get
    an interval [v − H, v + H] in ``bootstrap_cache.json``."""
    results = path / "results"
    boot = RecordBootstrap(B)
    entries = {}
    for rec in records:
        sha = hashlib.sha256(write_record(results, rec).read_bytes()).hexdigest()
        for stat, key in STATS.items():
            v = rec["summary"][key]
            entries[boot.key(stat, [{"record_sha256": sha}])] = {
                "estimate": v, "low": v - H, "high": v + H, "std": H / 2, "n_resamples": B,
                "p_value": None}
    if cache:
        (results / "bootstrap_cache.json").write_text(cache_json(entries))
    return path


def _shifted(records: list[dict[str, Any]], shifts: dict[tuple[str, int], float]
             ) -> list[dict[str, Any]]:
    """A rerun of ``records``: bit-identical copies except ID AP + shift of (recipe, seed)."""
    out = copy.deepcopy(records)
    for rec in out:
        shift = shifts.get((rec["spec"]["recipe"]["name"], rec["spec"]["seed"]))
        if shift is not None:
            rec["summary"]["id_ap"] = rec["summary"]["P"] = rec["summary"]["id_ap"] + shift
    return out


def _compare(a: Path, b: Path) -> vd.Comparison:
    return vd.compare_roots(vd.Root.at(a / "results"), vd.Root.at(b / "results"),
                            n_resamples=B)


def _run(capsys: Any, a: Path, b: Path, *extra: str) -> tuple[int, str]:
    rc = compare.main([str(a / "results"), str(b / "results"), "--bootstrap", str(B), *extra])
    return rc, capsys.readouterr().out


def _changed(c: vd.Comparison) -> vd.Match:
    (m,) = [m for m in c.matches if not m.identical]
    return m


# ft: three seeds, ID AP 0.50, 0.52, 0.54
THREE_SEEDS = [_record("ft", s, ap) for s, ap in ((0, 0.50), (1, 0.52), (2, 0.54))]
# Hand arithmetic: mean 0.52, squared deviations 0.0004 + 0 + 0.0004 = 0.0008 over n − 1 = 2:
# s² = 0.0004, s = 0.02. t_{0.975, 2} = 4.302653 (Student's t table), so the two-trainings
# bound b = 4.302653 · 0.02 · √2 = 0.1216974 and the yardstick √(h² + b²)
# = √(0.0001 + 0.0148103) = 0.1221076. (Without √2: b = 0.0860531, yardstick 0.0866321;
# with 1.96 instead of t: b = 0.0554372; h + b instead of the quadrature sum: 0.1316974.)
OWN_BOUND, OWN_YARDSTICK = 0.1216974, 0.1221076


def test_the_seed_bound_of_a_cell_is_t_times_s_times_root_2(tmp_path: Path) -> None:
    ref = _root(tmp_path / "A", THREE_SEEDS)
    records = load_records(ref / "results").records
    table = SeedNoiseTable(records)
    noise = table.of(records[0], "id_ap")
    assert noise is not None and not noise.pooled
    assert (noise.seeds, noise.cells, noise.df) == (3, 1, 2)
    assert noise.sd == pytest.approx(0.02, rel=1e-9)
    assert noise.bound == pytest.approx(OWN_BOUND, rel=1e-6)
    assert noise.source == "3 seeds of this cell"
    flat = table.of(records[0], "ood_mean")  # equal over the seeds: no spread at all
    assert flat is not None and flat.bound == 0.0


def test_beyond_test_set_noise_within_seed_noise_is_reproduced(
        tmp_path: Path, capsys: Any) -> None:
    """Δ ID AP = +0.10: beyond h = 0.01, within 0.1221076 (not within 0.0866321, the
    yardstick without √2, nor 0.0563, the one with 1.96 for t)."""
    ref = _root(tmp_path / "A", THREE_SEEDS)
    cand = _root(tmp_path / "B", _shifted(THREE_SEEDS, {("ft", 0): 0.10}))
    m = _changed(_compare(ref, cand))
    d = {d.key: d for d in m.deltas}["id_ap"]
    assert d.noise == pytest.approx(H) and d.noise_from == "reference"
    assert d.within is False
    assert d.yardstick == pytest.approx(OWN_YARDSTICK, rel=1e-6)
    assert m.verdict == vd.WITHIN_SEED == "reproduced within seed noise" and m.reproduced
    rc, out = _run(capsys, ref, cand)
    assert rc == 0, out
    assert ": reproduced within seed noise" in out
    row = next(ln.split() for ln in out.splitlines() if ln.strip().startswith("ID AP"))
    # ID AP, reference, candidate, Δ, ±test, ±seed, paired CI (—), within
    assert row[4:8] == ["+10.00", "±1.00", "±12.21", "—"] and row[-1] == "seed"
    assert "    seed noise: 3 seeds of this cell" in out
    assert out.rstrip().splitlines()[-2] == (
        "VERDICT: reproduced 3/3 (2 bit-identical, 0 within test-set noise, 1 within seed "
        "noise)")
    assert json.loads(_run(capsys, ref, cand, "--json")[1])["status"] == "reproduced"


def test_beyond_seed_noise_is_not_reproduced(tmp_path: Path, capsys: Any) -> None:
    """Δ ID AP = +0.13 > 0.1221076 (though < 0.1316974 = h + b: the quadrature sum, not
    the plain sum, is the yardstick)."""
    ref = _root(tmp_path / "A", THREE_SEEDS)
    cand = _root(tmp_path / "B", _shifted(THREE_SEEDS, {("ft", 0): 0.13}))
    m = _changed(_compare(ref, cand))
    assert m.verdict == vd.BEYOND == "NOT reproduced: beyond seed noise"
    assert not m.reproduced
    rc, out = _run(capsys, ref, cand)
    assert rc == 1, out
    assert ": NOT reproduced: beyond seed noise" in out
    row = next(ln.split() for ln in out.splitlines() if ln.strip().startswith("ID AP"))
    assert row[-1] == "NO"
    assert out.rstrip().splitlines()[-2] == (
        "VERDICT: NOT reproduced — 2/3 of reference reproduced (2 bit-identical, 0 within "
        "test-set noise, 0 within seed noise); 1 beyond seed noise")
    js = json.loads(_run(capsys, ref, cand, "--json")[1])
    assert js["status"] == "NOT reproduced" and js["ok"] is False


def test_within_test_set_noise_comes_first(tmp_path: Path) -> None:
    ref = _root(tmp_path / "A", THREE_SEEDS)
    cand = _root(tmp_path / "B", _shifted(THREE_SEEDS, {("ft", 0): 0.005}))  # 0.005 ≤ h
    c = _compare(ref, cand)
    assert _changed(c).verdict == vd.WITHIN == "reproduced within test-set noise"
    assert c.status == vd.STATUS_REPRODUCED


def test_one_seed_is_undetermined_never_not_reproduced(tmp_path: Path, capsys: Any) -> None:
    """The demo cells have one seed each; the cells with several are of another family or
    another engine, so nothing is pooled: even a Δ of 40 AP points is undetermined."""
    records = [_record("ft", 0, 0.50), _record("dp", 0, 0.45),
               _record("ft", 0, 0.10, family="other"), _record("ft", 1, 0.90, family="other"),
               _record("dp", 0, 0.10, engine="detectron2_small"),
               _record("dp", 1, 0.90, engine="detectron2_small")]
    ref = _root(tmp_path / "A", records)
    shifted = _shifted(records[:1], {("ft", 0): 0.40}) + copy.deepcopy(records[1:])
    cand = _root(tmp_path / "B", shifted)
    c = _compare(ref, cand)
    m = _changed(c)
    assert {d.key: d for d in m.deltas}["id_ap"].seed is None
    assert m.verdict == vd.UNDETERMINED_SEED == "undetermined: 1 seed, training noise unknown"
    assert c.status == vd.STATUS_UNDETERMINED and not c.ok
    rc, out = _run(capsys, ref, cand)
    assert rc == 1, out
    assert "NOT reproduced" not in out
    assert "? " + m.reference.fingerprint[:12] in out
    assert out.rstrip().splitlines()[-2] == (
        "VERDICT: undetermined — 5/6 of reference reproduced (5 bit-identical, 0 within "
        "test-set noise, 0 within seed noise); 1 undetermined (1 seed, training noise "
        "unknown)")
    # without any interval either: the older "undetermined" (and never "NOT reproduced")
    rc, out = _run(capsys, ref, cand, "--bootstrap", "0")
    assert rc == 1 and "NOT reproduced" not in out
    assert ": undetermined: numbers differ and no interval is available" in out


def test_a_one_seed_cell_pools_its_family_and_engine(tmp_path: Path, capsys: Any) -> None:
    """dp_ft has one seed; ft (3 seeds) and dp (2 seeds) of the same family and engine lend
    their spread; the wide cells of another family or engine do not."""
    records = [*THREE_SEEDS, _record("dp", 0, 0.40), _record("dp", 1, 0.43),
               _record("dp_ft", 0, 0.45),
               _record("ft", 0, 0.10, family="other"), _record("ft", 1, 0.90, family="other"),
               _record("dp", 0, 0.10, engine="detectron2_small"),
               _record("dp", 1, 0.90, engine="detectron2_small")]
    # Hand arithmetic: ft s² = 0.0004 on 2 df; dp: mean 0.415, squared deviations
    # 0.015² + 0.015² = 0.00045 on 1 df, s² = 0.00045. Pooled s_p² = (2 · 0.0004 + 1 · 0.00045)
    # / (2 + 1) = 0.00125 / 3 = 0.000416667, s_p = 0.0204124 on 3 df; t_{0.975, 3} = 3.182446,
    # b = 3.182446 · 0.0204124 · √2 = 0.0918693, yardstick √(0.0001 + 0.0084399) = 0.0924120.
    ref = _root(tmp_path / "A", records)
    table = SeedNoiseTable(load_records(ref / "results").records)
    one = next(r for r in load_records(ref / "results").records
               if r.data["spec"]["recipe"]["name"] == "dp_ft")
    noise = table.of(one, "id_ap")
    assert noise is not None and noise.pooled
    assert (noise.cells, noise.seeds, noise.df) == (2, 5, 3)
    assert noise.sd == pytest.approx(0.0204124, rel=1e-5)
    assert noise.bound == pytest.approx(0.0918693, rel=1e-5)

    cand = _root(tmp_path / "B", _shifted(records, {("dp_ft", 0): 0.08}))  # 0.08 ≤ 0.0924120
    m = _changed(_compare(ref, cand))
    assert {d.key: d for d in m.deltas}["id_ap"].yardstick == pytest.approx(0.0924120, rel=1e-5)
    assert m.verdict == vd.WITHIN_SEED
    rc, out = _run(capsys, ref, cand)
    assert rc == 0, out
    assert "    seed noise: pooled from 2 cells (5 seeds)" in out

    cand = _root(tmp_path / "C", _shifted(records, {("dp_ft", 0): 0.095}))  # > 0.0924120
    assert _changed(_compare(ref, cand)).verdict == vd.BEYOND


def test_beyond_seed_noise_outweighs_undetermined(tmp_path: Path, capsys: Any) -> None:
    records = [*THREE_SEEDS, _record("ft", 0, 0.50, family="other")]
    ref = _root(tmp_path / "A", records)
    shifted = _shifted(records[:3], {("ft", 0): 0.13}) + _shifted(records[3:], {("ft", 0): 0.2})
    cand = _root(tmp_path / "B", shifted)
    assert sorted(m.verdict for m in _compare(ref, cand).matches) == sorted(
        [vd.BIT_IDENTICAL, vd.BIT_IDENTICAL, vd.BEYOND, vd.UNDETERMINED_SEED])
    rc, out = _run(capsys, ref, cand)
    assert rc == 1
    assert out.rstrip().splitlines()[-2] == (
        "VERDICT: NOT reproduced — 2/4 of reference reproduced (2 bit-identical, 0 within "
        "test-set noise, 0 within seed noise); 1 beyond seed noise; 1 undetermined (1 seed, "
        "training noise unknown)")


def test_cpu_difference_names_what_differs() -> None:
    assert cpu_difference(EPYC, copy.deepcopy(EPYC)) is None
    assert cpu_difference(None, None) is None
    assert cpu_difference(EPYC, XEON) == (
        "CPU differs: isa.aten avx512≠avx2, isa.blas AVX512≠AVX2, isa.onednn avx512≠avx2, "
        "model AMD EPYC 9R14≠Intel Xeon Platinum 8375C")
    assert cpu_difference({**EPYC, "pinned": False}, EPYC) == "CPU differs: pinned false≠true"
    assert cpu_difference(None, EPYC) == "CPU differs: not recorded ≠ AMD EPYC 9R14"
    assert cpu_difference(XEON, {}) == "CPU differs: Intel Xeon Platinum 8375C ≠ not recorded"


def test_a_pair_on_other_cpus_says_so(tmp_path: Path, capsys: Any) -> None:
    ref = _root(tmp_path / "A", [_record("ft", 0, 0.5, cpu=EPYC), _record("dp", 0, 0.4)])
    cand = _root(tmp_path / "B", [_record("ft", 0, 0.5, cpu=XEON),
                                  _record("dp", 0, 0.4, cpu=XEON)])
    rc, out = _run(capsys, ref, cand)
    assert rc == 0, out  # same numbers: bit-identical, whatever the CPU
    assert out.count(": bit-identical") == 2
    assert ("    CPU differs: isa.aten avx512≠avx2, isa.blas AVX512≠AVX2, isa.onednn "
            "avx512≠avx2, model AMD EPYC 9R14≠Intel Xeon Platinum 8375C") in out
    assert "    CPU differs: not recorded ≠ Intel Xeon Platinum 8375C" in out
    assert "matched by" not in out  # by fingerprint, nothing else differs
    js = json.loads(_run(capsys, ref, cand, "--json")[1])
    assert sorted(d for m in js["matches"] for d in m["differs"]) == [
        "CPU differs: isa.aten avx512≠avx2, isa.blas AVX512≠AVX2, isa.onednn avx512≠avx2, "
        "model AMD EPYC 9R14≠Intel Xeon Platinum 8375C",
        "CPU differs: not recorded ≠ Intel Xeon Platinum 8375C"]


@pytest.mark.parametrize(("delta", "expected"), [
    (0.0, "test"), (0.03, "test"), (-0.03, "test"),  # |Δ| ≤ test noise 0.03
    (0.0301, "seed"), (0.05, "seed"), (-0.05, "seed"),  # ≤ √(0.03² + 0.04²) = 0.05
    (0.0501, "beyond"), (-0.0501, "beyond"),
])
def test_classify_at_the_boundaries_by_hand(delta: float, expected: str) -> None:
    """Known answer on a 3-4-5 triangle: test-set noise 0.03, seed bound 0.04, so the
    combined yardstick is exactly 0.05; without a seed bound the same Δ beyond 0.03 is
    "1 seed" (undetermined), never "beyond"."""
    from benchmark.compare.seed_noise import SeedNoise, classify

    seed = SeedNoise(bound=0.04, sd=0.02, df=1, seeds=2, cells=1, pooled=False)
    assert classify(delta, 0.03, seed) == expected
    assert classify(delta, 0.03, None) == ("test" if expected == "test" else "1 seed")


@pytest.mark.parametrize(("delta", "within"), [(0.0199, True), (-0.0199, True),
                                               (0.0201, False), (-0.0201, False), (0.0, True)])
def test_within_test_set_noise_at_the_boundary(delta: float, within: bool) -> None:
    d = vd.Delta("AP", "AP", reference=0.5, candidate=0.5 + delta, noise=0.02)
    assert d.within is within
