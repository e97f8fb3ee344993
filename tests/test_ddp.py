"""Multi-process training (DDP) on the CPU with gloo: gradients are synchronised, so both
processes end with identical weights although each saw different images; only rank 0
writes the checkpoint."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from tests.conftest import TESTS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, env: dict[str, str], out: str) -> None:
    os.environ.update(env)
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    from benchmark.data.split import load_split
    from benchmark.grid import load_grid
    from benchmark.store import TrainingDir
    from benchmark.training import Trainer

    spec = load_grid(str(TESTS / "grids" / "resume.yaml")).runs[0]
    trainer = Trainer(spec, load_split(spec.train_split), TrainingDir(spec.train_fingerprint))
    seen = [trainer.batch(it)[1][0]["boxes"].sum().item() for it in range(3)]
    trainer.run(progress=False)
    h = hashlib.sha256()
    for k, v in sorted(trainer.model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    Path(out, f"rank{rank}.txt").write_text(f"{h.hexdigest()} {seen}")


def test_two_process_ddp_synchronises_and_rank0_writes(tmp_path: Path, tiny_data_root: Path):
    env = {
        "BENCH_DATA": str(tiny_data_root),
        "BENCH_RESULTS": str(tmp_path / "results"),
        "BENCH_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    grid_iters = "iterations: 16"
    assert grid_iters in (TESTS / "grids" / "resume.yaml").read_text()
    mp.start_processes(
        _worker,
        args=(2, _free_port(), env, str(tmp_path)),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    h0, seen0 = (tmp_path / "rank0.txt").read_text().split(" ", 1)
    h1, seen1 = (tmp_path / "rank1.txt").read_text().split(" ", 1)
    assert seen0 != seen1, "each process must train on its own share of the batch"
    assert h0 == h1, "weights diverged: gradients were not synchronised"
    finals = list((tmp_path / "artifacts" / "train").glob("*/model_final.pt"))
    assert len(finals) == 1
