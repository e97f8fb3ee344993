"""The evaluation sweep (``inference.predict_splits`` / ``pipeline.evaluate_stage``): all
splits of a cell in one pass, images made in worker processes, predictions identical to the
one-split path, each split's metrics written as it finishes (a failed sweep resumes where it
stopped)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from benchmark.data.labels import LabelMap
from benchmark.data.split import load_split, resolve_split, split_dir
from benchmark.grid import load_grid
from benchmark.inference import predict_split, predict_splits
from benchmark.pipeline import evaluate_stage
from benchmark.spec import RunSpec
from benchmark.store import TrainingDir
from benchmark.training import checkpoint
from tests.conftest import TINY_GRID


def _spec() -> RunSpec:
    return next(s for s in load_grid(str(TINY_GRID)).runs
                if s.backbone.name == "resnet18" and s.recipe.name == "ft")


def _model(spec: RunSpec, labels: LabelMap) -> torch.nn.Module:
    """An untrained detector: ~100 detections per image, plenty to compare."""
    torch.manual_seed(0)
    return checkpoint.load_detector(spec, len(labels), None)


def test_sweep_predictions_equal_the_one_split_path(bench_env: Path) -> None:
    spec = _spec()
    labels = LabelMap(load_split(spec.train_split))
    model = _model(spec, labels)
    # a plain split, a materialised corrupted one, one corrupted on the fly (not built)
    names = ["demo_test", "demo_test-C.gaussian_noise.3", "demo_test-C.contrast.3"]
    splits = [resolve_split(n) for n in names]
    assert [s.corruption for s in splits] == [None, None, ("contrast", 3, "rgb")]
    ref = {s.name: predict_split(model, s, labels, 3, progress=False) for s in splits}
    assert all(len(r) > 100 for r in ref.values())  # 4 images: batches of 3 and 1
    assert ref["demo_test"] != ref["demo_test-C.contrast.3"]  # the corruption took effect
    swept = list(predict_splits(model, splits, labels, 3, workers=2, progress=False))
    assert [s.name for s, _ in swept] == names
    assert {s.name: p for s, p in swept} == ref  # same boxes, labels and scores, bit for bit


@pytest.mark.slow  # ~35 s here: two sweeps of 6 splits, worker and scoring processes
def test_each_split_is_recorded_as_it_finishes_and_a_failed_sweep_resumes(
    bench_env: Path, tmp_path: Path, tiny_data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"  # a private copy: one image of a later split is damaged
    shutil.copytree(tiny_data_root, data, symlinks=True)
    monkeypatch.setenv("BENCH_DATA", str(data))
    monkeypatch.setenv("BENCH_LOADER_WORKERS", "1")
    spec = _spec()
    assert spec.eval_splits[2:4] == ["demo_sketch", "demo_inked"]
    labels = LabelMap(load_split(spec.train_split))
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(checkpoint.to_bytes({"model": _model(spec, labels).state_dict()}))
    image = next((split_dir("demo_inked") / "images").iterdir())
    good = image.read_bytes()
    image.write_bytes(good[:40])
    with pytest.raises(Exception, match=image.name):  # raised in the worker, reported here
        evaluate_stage(spec, ckpt, progress=False)
    out = TrainingDir(spec.train_fingerprint).evaluation(spec.eval_fingerprint)
    written = [n for n in spec.eval_splits if out.metrics(n).is_file()]
    assert written == spec.eval_splits[:3]  # the splits before the failing one
    stamps = {n: out.metrics(n).stat().st_mtime_ns for n in written}
    image.write_bytes(good)
    metrics = evaluate_stage(spec, ckpt, progress=False)
    assert list(metrics) == spec.eval_splits
    assert {n: out.metrics(n).stat().st_mtime_ns for n in written} == stamps  # not redone
    assert all(len(json.loads(out.predictions(n).read_text())) > 100 for n in spec.eval_splits)
