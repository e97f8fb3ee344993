"""Training batches decoded ahead in worker processes are exactly the in-process ones, so
the loader setting never changes what a run learns."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmark.data.split import load_split
from benchmark.grid import load_grid
from benchmark.store import TrainingDir
from benchmark.training import Trainer
from tests.conftest import TESTS


def _trainer(out: Path) -> Trainer:
    spec = load_grid(str(TESTS / "grids" / "resume.yaml")).runs[0]
    return Trainer(spec, load_split(spec.train_split), TrainingDir("t", out))


def test_worker_batches_equal_in_process_batches(bench_env, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_LOADER_WORKERS", "0")
    plain = [b for _, b in zip(range(6), _trainer(tmp_path / "a").batches(3), strict=False)]
    monkeypatch.setenv("BENCH_LOADER_WORKERS", "2")
    ahead = [b for _, b in zip(range(6), _trainer(tmp_path / "b").batches(3), strict=False)]
    assert [it for it, _, _ in ahead] == [3, 4, 5, 6, 7, 8]
    assert len(plain) == len(ahead) == 6
    for (it_a, img_a, tgt_a), (it_b, img_b, tgt_b) in zip(plain, ahead, strict=True):
        assert it_a == it_b
        assert all(torch.equal(x, y) for x, y in zip(img_a, img_b, strict=True))
        for ta, tb in zip(tgt_a, tgt_b, strict=True):
            assert torch.equal(ta["boxes"], tb["boxes"]) and torch.equal(ta["labels"], tb["labels"])
    # the draws include flips: at least one flipped image differs from its source
    assert any(
        not torch.equal(img, _trainer(tmp_path / "c").dataset[i][0])
        for it in range(3, 9)
        for img, i in zip(plain[it - 3][1], _trainer(tmp_path / "c").draw(it)[0], strict=True)
    )
