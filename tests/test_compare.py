"""python -m benchmark.compare / benchmark.compare.verdict on hand-made results roots: identical,
shifted within test-set noise, shifted beyond it, runs on one side only, matched by
configuration when the fingerprints differ, intervals from the report's cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark import compare
from benchmark.compare import verdict as vd
from tests.report.test_frames import make_record, set_metrics, write_record
from tests.report.test_report import _detect, write_gt_splits

SPLITS = ("demo_test", "demo_sketch", "demo_test-C.fog.3")
RECIPES = {"ft": (2.0, 0.1), "dp": (6.0, 0.3)}  # recipe → (box noise, miss rate)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Prepared splits (the ground truth both roots were evaluated on) and their content
    fingerprints."""

    data = tmp_path / "data"
    monkeypatch.setenv("BENCH_DATA", str(data))
    gts, fps = write_gt_splits(data, np.random.default_rng(0))
    return {"tmp": tmp_path, "gts": gts, "fps": fps}


def _predictions(world: dict[str, Any], recipe: str, seed: int) -> dict[str, list]:
    noise, miss = RECIPES[recipe]
    rng = np.random.default_rng(seed)
    return {n: _detect(gt, rng, noise + (3.0 if "-C." in n else 0.0), miss)
            for n, gt in world["gts"].items()}


def _jitter(preds: dict[str, list], sigma: float, seed: int) -> dict[str, list]:
    """The same detections with boxes moved by N(0, sigma) pixels: a rerun whose float
    reductions differ slightly."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, dets in preds.items():
        moved = []
        for d in dets:
            box = np.asarray(d["bbox"]) + rng.normal(0, sigma, 4)
            box[2:] = np.abs(box[2:]) + 1
            moved.append({**d, "bbox": [float(v) for v in box]})
        out[split] = moved
    return out


def _write_run(world: dict[str, Any], root: Path, recipe: str, preds: dict[str, list],
               datasets: dict[str, str] | None = None, engine: str | None = None
               ) -> dict[str, Any]:
    """A record whose metrics are the real COCO numbers of ``preds``, with the predictions
    saved under ``root/artifacts`` (``engine``: the same cell on another engine)."""
    from benchmark.evaluation.coco import coco_summary

    rec = make_record(recipe=recipe, ood={"demo_sketch": 0.0}, corruption={"fog": {"3": 0.0}},
                      datasets=datasets or world["fps"])
    if engine is not None:  # another engine: another spec, so another fingerprint
        rec["spec"]["engine"] = engine
        rec["fingerprint"] = rec["fingerprint"][::-1]
    fp = rec["fingerprint"]
    metrics = {}
    for name, dets in preds.items():
        path = root / "artifacts" / "runs" / fp / "predictions" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dets))
        metrics[name] = coco_summary(world["gts"][name], dets)
    set_metrics(rec, metrics)
    write_record(root / "results", rec)
    return rec


@pytest.fixture
def reference(world: dict[str, Any]) -> Path:
    root = world["tmp"] / "A"
    for i, recipe in enumerate(RECIPES):
        _write_run(world, root, recipe, _predictions(world, recipe, seed=i))
    return root


def _run(capsys: Any, a: Path, b: Path, *extra: str) -> tuple[int, str]:
    rc = compare.main([str(a / "results"), str(b / "results"), "--bootstrap", "200", *extra])
    return rc, capsys.readouterr().out


def test_identical_roots_are_bit_identical(reference: Path, capsys: Any) -> None:
    copy = reference.parent / "B"
    shutil.copytree(reference, copy)
    rc, out = _run(capsys, reference, copy)
    assert rc == 0, out
    assert out.count(": bit-identical") == 2
    assert ("VERDICT: reproduced 2/2 (2 bit-identical, 0 within test-set noise, 0 within seed "
            "noise)") in out


def test_a_rerun_shifted_within_noise_is_reproduced(world: dict[str, Any], reference: Path,
                                                     capsys: Any) -> None:
    b = world["tmp"] / "B"
    for i, recipe in enumerate(RECIPES):
        _write_run(world, b, recipe, _jitter(_predictions(world, recipe, seed=i), 0.4, 7))
    c = vd.compare_roots(vd.Root.at(reference / "results"), vd.Root.at(b / "results"),
                         n_resamples=200)
    assert len(c.matches) == 2 and all(m.how == "fingerprint" for m in c.matches)
    for m in c.matches:
        assert not m.identical
        assert m.verdict == vd.WITHIN, vd.format_comparison(c)
        for d in m.deltas:
            assert d.delta != 0 or d.key == "rPC"
            assert d.noise is not None and d.noise_from == "reference"
            assert abs(d.delta) <= d.noise
            # both sides' predictions are here: the paired interval of Δ is shown
            if d.delta != 0:
                assert d.paired is not None and d.paired.low <= d.paired.estimate
                assert d.paired.estimate == pytest.approx(d.delta, abs=1e-9)
    rc, out = _run(capsys, reference, b)
    assert rc == 0, out
    assert "reproduced within test-set noise" in out
    assert ("VERDICT: reproduced 2/2 (0 bit-identical, 2 within test-set noise, 0 within seed "
            "noise)") in out
    assert "paired 95% CI of Δ" in out


def test_a_rerun_shifted_beyond_test_set_noise_with_one_seed_is_undetermined(
        world: dict[str, Any], reference: Path, capsys: Any) -> None:
    """One seed per cell in the reference: a Δ beyond test-set noise may be training noise
    (another CPU type), so it is undetermined — and still fails (exit 1) — never "NOT
    reproduced" (tests/report/test_verdict_noise.py: with several seeds)."""
    b = world["tmp"] / "B"
    _write_run(world, b, "ft", _predictions(world, "ft", seed=0))  # identical
    worse = {n: _detect(gt, np.random.default_rng(5), 12.0, 0.6)
             for n, gt in world["gts"].items()}
    _write_run(world, b, "dp", worse)
    rc, out = _run(capsys, reference, b)
    assert rc == 1, out
    assert ": undetermined: 1 seed, training noise unknown" in out
    assert "NOT reproduced" not in out
    assert out.count(": bit-identical") == 1
    assert out.rstrip().splitlines()[-2].startswith(
        "VERDICT: undetermined — 1/2 of reference reproduced (1 bit-identical, 0 within "
        "test-set noise, 0 within seed noise); 1 undetermined (1 seed, training noise unknown)")
    assert "seed noise: unknown (1 seed of this cell" in out
    rows = [ln.split() for ln in out.splitlines() if ln.strip().startswith("ID AP")]
    assert rows and rows[0][-1] == "?" and rows[0][6] == "—"  # no ±seed
    js = json.loads(_run(capsys, reference, b, "--json")[1])
    assert js["status"] == "undetermined" and js["ok"] is False


def test_runs_on_one_side_only_are_listed(world: dict[str, Any], reference: Path,
                                          capsys: Any) -> None:
    b = world["tmp"] / "B"
    shutil.copytree(reference, b)
    ft = next(p for p in (b / "results" / "runs").iterdir()
              if json.loads((p / "record.json").read_text())["spec"]["recipe"]["name"] == "ft")
    shutil.rmtree(ft)
    extra = make_record(backbone="resnet50", recipe="ft")
    write_record(b / "results", extra)
    rc, out = _run(capsys, reference, b)
    assert rc == 1
    assert "only in reference (1):" in out and "resnet18[imagenet] × ft" in out
    assert "only in candidate (1):" in out and "resnet50[imagenet] × ft" in out
    assert "1 missing from candidate" in out and "1 only in candidate" in out
    js = json.loads(_run(capsys, reference, b, "--json")[1])
    assert js["ok"] is False and js["only_candidate"] == [extra["fingerprint"]]


def test_a_different_data_fingerprint_is_matched_by_configuration(
        world: dict[str, Any], reference: Path, capsys: Any) -> None:
    """Another CPU type generates other demo pixels: other content fingerprints, so another
    run fingerprint — the same configuration, judged against the reference's intervals."""
    b = world["tmp"] / "B"
    other = {**world["fps"], "demo_sketch": "f" * 64}
    recs = [_write_run(world, b, r, _jitter(_predictions(world, r, seed=i), 0.4, 7), other)
            for i, r in enumerate(RECIPES)]
    ref_fps = {p.name for p in (reference / "results" / "runs").iterdir()}
    assert not ref_fps & {r["fingerprint"] for r in recs}
    c = vd.compare_roots(vd.Root.at(reference / "results"), vd.Root.at(b / "results"),
                         n_resamples=200)
    assert [m.how for m in c.matches] == ["configuration", "configuration"]
    assert all(m.differs == ["dataset content of `demo_sketch`"] for m in c.matches)
    assert all(m.verdict == vd.WITHIN for m in c.matches), vd.format_comparison(c)
    rc, out = _run(capsys, reference, b)
    assert rc == 0
    assert "matched by configuration — differs: dataset content of `demo_sketch`" in out


def test_the_same_cells_on_another_engine_match_only_across_engines(
        world: dict[str, Any], reference: Path, capsys: Any) -> None:
    """detectron2 vs torchvision: different configurations, so nothing matches — unless asked
    (``--across engine``), and then every pair says which engines it compares."""
    b = world["tmp"] / "B"
    for i, r in enumerate(RECIPES):
        _write_run(world, b, r, _jitter(_predictions(world, r, seed=i), 0.4, 7),
                   engine="detectron2_small")
    rc, out = _run(capsys, reference, b)
    assert rc == 1 and "0 matched run(s)" in out and "only in candidate (2)" in out
    rc, out = _run(capsys, reference, b, "--across", "engine")
    assert rc == 0, out
    assert out.count("differs: engine frcnn_fpn_small → detectron2_small") == 2
    assert ("VERDICT: reproduced 2/2 (0 bit-identical, 2 within test-set noise, 0 within seed "
            "noise)") in out


def test_reference_intervals_come_from_the_report_cache_without_predictions(
        world: dict[str, Any], reference: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmark.report import build, output
    from benchmark.report.options import Options

    monkeypatch.setenv("BENCH_ARTIFACTS", str(reference / "artifacts"))
    opts = Options(reference / "results", reference / "BENCHMARKS.md", n_resamples=200)
    output.write_outputs(build.build_report(opts), opts)  # writes bootstrap_cache.json
    b = world["tmp"] / "B"
    for i, recipe in enumerate(RECIPES):
        _write_run(world, b, recipe, _jitter(_predictions(world, recipe, seed=i), 0.4, 7))
    shutil.rmtree(reference / "artifacts")
    shutil.rmtree(b / "artifacts")  # neither side's predictions: only the cache is left
    c = vd.compare_roots(vd.Root.at(reference / "results"), vd.Root.at(b / "results"),
                         n_resamples=200)
    for m in c.matches:
        judged = {d.key: d for d in m.deltas}
        assert judged["id_ap"].noise_from == "reference"
        assert judged["id_ap"].paired is None
        assert m.verdict == vd.WITHIN
    # a different bootstrap size has no cached intervals: nothing left to judge with
    c = vd.compare_roots(vd.Root.at(reference / "results"), vd.Root.at(b / "results"),
                         n_resamples=50)
    assert {m.verdict for m in c.matches} == {vd.UNDETERMINED} and not c.ok


def test_not_a_results_root_is_an_input_error(tmp_path: Path, capsys: Any) -> None:
    assert compare.main([str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert "not a results root" in capsys.readouterr().err
