"""The local executor's choice of the next cell: never one that would only wait for an
ancestor's training lock while a worker could run something else."""

from __future__ import annotations

from dataclasses import replace

from benchmark.executors import next_ready
from benchmark.recipes import parent_of
from benchmark.spec import BackboneSpec, RecipeSpec, RunSpec, Schedule

CELL = RunSpec(
    family="demo", engine="frcnn_fpn_small", backbone=BackboneSpec("resnet18", "none"),
    recipe=RecipeSpec("ft"), train_split="demo_train", id_split="demo_test", ood_splits=(),
    corruption=None, schedule=Schedule(iterations=2, batch_size=2, lr=0.01), seed=0)


def _cell(name: str, **params: object) -> RunSpec:
    return replace(CELL, recipe=RecipeSpec.make(name, **params))


def test_a_cell_waits_while_any_ancestor_trains() -> None:
    dp, dp_ft = _cell("dp", lr=0.02), _cell("dp_ft", dp_lr=0.02)
    wise = _cell("wise_ft", dp_lr=0.02, alpha=0.5)
    ft = _cell("ft")
    assert parent_of(dp_ft) == dp and parent_of(wise) == dp_ft
    queue = [dp_ft, wise, ft]
    assert next_ready(queue, set()) == 0  # nothing running: grid order
    assert next_ready(queue, {dp.fingerprint}) == 2  # DP trains: DP-FT and the mix wait
    assert next_ready([wise, ft], {dp_ft.fingerprint}) == 1  # DP-FT trains: the mix waits
    assert next_ready([wise], {dp.fingerprint}) is None  # grandparent training: wait
    assert next_ready([wise], {ft.fingerprint}) == 0
