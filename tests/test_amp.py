"""Mixed precision (``schedule.amp``) and the evaluation backend (``schedule.eval_backend``):
an AMP training trains and resumes bit for bit, and neither key moves a default spec's
fingerprints (the committed demo records stay theirs)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from benchmark.data.split import load_split
from benchmark.errors import ConfigError
from benchmark.grid import load_grid
from benchmark.spec import RunSpec, Schedule, spec_from_json
from benchmark.store import TrainingDir
from benchmark.training import Trainer
from tests.conftest import TESTS, TINY_GRID

REPO = TESTS.parent
# a committed demo record (resnet18 × ft, written before either key existed) and its names
#: a committed demo record (fp32, default evaluation backend): written by the code of its
#: results version, so its fingerprints must still come out of its spec unchanged
DEMO_RECORD = sorted((REPO / "results" / "runs").glob("*/record.json"))[0]


def _with(spec: RunSpec, **schedule: object) -> RunSpec:
    return dataclasses.replace(spec, schedule=dataclasses.replace(spec.schedule, **schedule))


def _tiny_spec(**schedule: object) -> RunSpec:
    """The tiny grid's resnet18 × ft cell, 4 iterations, checkpoints at 2 and 4."""
    spec = next(s for s in load_grid(str(TINY_GRID)).runs
                if s.backbone.name == "resnet18" and s.recipe.name == "ft")
    return _with(spec, iterations=4, checkpoint_every=2, rgn_batches=0, **schedule)


class _KeepCheckpoints(TrainingDir):
    """A training folder whose checkpoints outlive the final model (to resume from)."""

    def write_final(self, data: bytes) -> None:
        self.final.write_bytes(data)


def _train(spec: RunSpec) -> tuple[dict[str, torch.Tensor], list[dict]]:
    out = _KeepCheckpoints(spec.train_fingerprint)
    trainer = Trainer(spec, load_split(spec.train_split), out)
    state = torch.load(trainer.run(progress=False), weights_only=False)
    return state["model"], state["log"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("amp", ["bf16", pytest.param("fp16", marks=pytest.mark.slow)])
def test_amp_trains_finite_and_resumes_identically(bench_env: Path, amp: str) -> None:
    spec = _tiny_spec(amp=amp)
    weights, log = _train(spec)
    assert [e["iter"] for e in log] == [0, 3]
    assert all(math.isfinite(e["loss"]) for e in log)
    out = TrainingDir(spec.train_fingerprint)
    last = torch.load(out.last, weights_only=False)
    assert last["iteration"] == 4
    assert ("scaler" in last) == (amp == "fp16")  # fp16's loss scale is checkpointed
    if amp == "fp16":
        assert last["scaler"]["scale"] > 0
    # resume from the checkpoint of iteration 2: a damaged last.pt falls back to previous.pt
    out.final.unlink()
    out.last.write_bytes(out.last.read_bytes()[:500])
    resumed, resumed_log = _train(spec)
    assert _same(resumed, weights) and resumed_log == log
    # and the autocast did act: fp32 training of the same draws ends elsewhere
    fp32, _ = _train(_tiny_spec())
    assert not _same(fp32, weights)


def test_default_keys_leave_the_committed_demo_fingerprints_unchanged() -> None:
    record = json.loads(DEMO_RECORD.read_text())
    assert "amp" not in record["spec"]["schedule"]
    spec = spec_from_json(record["spec"])
    assert (spec.schedule.amp, spec.schedule.eval_backend) == ("off", "pycocotools")
    assert (spec.fingerprint, spec.train_fingerprint) == (
        record["fingerprint"], record["train_fingerprint"])
    # its predictions' folder is named by the evaluation fingerprint
    assert f"/{spec.eval_fingerprint}/" in next(iter(record["artifacts"]["predictions"].values()))
    assert spec.to_json() == record["spec"]  # the defaults stay out of the canonical JSON
    # amp names the training (not its draws); eval_backend names only the evaluation
    bf16 = _with(spec, amp="bf16")
    assert bf16.seed_fingerprint == spec.seed_fingerprint
    assert bf16.train_fingerprint != spec.train_fingerprint
    assert bf16.fingerprint != spec.fingerprint
    assert spec_from_json(bf16.to_json()) == bf16
    fast = _with(spec, eval_backend="faster_coco_eval")
    assert fast.train_fingerprint == spec.train_fingerprint
    assert fast.eval_fingerprint != spec.eval_fingerprint
    assert fast.fingerprint != spec.fingerprint


@pytest.mark.parametrize(("key", "value"), [("amp", "fp8"), ("amp", True),
                                            ("eval_backend", "cocoapi")])
def test_invalid_value_is_refused_with_field_and_value(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        Schedule(iterations=1, batch_size=1, lr=0.1, **{key: value})
    assert str(e.value).startswith(f"schedule.{key}={value!r}: must be one of ")


def test_eval_backend_reaches_evaluate_split(bench_env: Path) -> None:
    """Both backends score the same predictions alike (perfect and shifted boxes)."""
    from benchmark.evaluation import evaluate_split

    spec = _tiny_spec()
    split = load_split(spec.id_split)
    preds = []
    for i, ann in enumerate(split.coco["annotations"]):
        x, y, w, h = ann["bbox"]
        shift = 0.0 if i % 2 else 0.3 * w  # every other box at IoU ~0.54
        preds.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                      "bbox": [x + shift, y, w, h], "score": 1.0 - i / 1000})
    ref = evaluate_split(spec, spec.id_split, split.annotation_path, preds)
    fast = evaluate_split(_with(spec, eval_backend="faster_coco_eval"), spec.id_split,
                          split.annotation_path, preds)
    assert 0 < ref["AP"] < 1
    assert fast.keys() == ref.keys()
    assert all(fast[k] == pytest.approx(ref[k], abs=1e-6) for k in ref)
