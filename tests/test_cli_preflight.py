"""Every check before any work, in one pass: the SLURM profile before data preparation, and
every problem of a grid listed at once (one line each), exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.run import main
from tests.conftest import TINY_GRID

BAD_GRID = """\
name: bad
family: demo
engine: frcnn_fpn_small
train_split: demo_train
id_split: demo_test
schedule: {iteratons: 6, batch_size: 2, lr: 0.01}
backbones: [{name: resnet18, weights: none}]
experiments:
  - recipes: [{name: ft, lr_decay: 2}]
  - recipes: [{name: dp, lrr: 0.02}]
"""


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("BENCH_DATA", "BENCH_RESULTS", "BENCH_ARTIFACTS", "BENCH_WEIGHTS"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    return tmp_path


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmark.acquire.inputs as inputs
    import benchmark.run as run

    def forbidden(*_a, **_k):
        raise AssertionError("work started before the profile was checked")

    monkeypatch.setattr(run, "prepare_generated", forbidden)
    monkeypatch.setattr(inputs, "grid_inputs", forbidden)


@pytest.mark.parametrize("dry", [True, False])
def test_an_unknown_profile_fails_before_any_data_work(roots, monkeypatch, capsys, dry) -> None:
    _no_work(monkeypatch)
    argv = ["--grid", "demo", "--executor", "slurm", "--profile", "nope"]
    assert main([*argv, "--dry-run"] if dry else argv) == 2
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert line.startswith("error: ") and "'nope'" in line
    assert "local" in line and "example_university" in line  # the known profiles


def test_slurm_without_profile_names_the_known_ones(roots, monkeypatch, capsys) -> None:
    _no_work(monkeypatch)
    assert main(["--grid", "demo", "--executor", "slurm", "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--profile" in line and "local" in line


def test_every_problem_of_a_grid_is_listed_at_once(roots, capsys) -> None:
    grid = roots / "bad.yaml"
    grid.write_text(BAD_GRID)
    assert main(["--grid", str(grid), "--dry-run", "--executor", "slurm",
                 "--profile", "nope"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(ln.startswith(f"error: {grid}: ") or "'nope'" in ln for ln in lines), lines
    text = "\n".join(lines)
    assert sum("'nope'" in ln for ln in lines) == 1
    assert "experiments[0].recipes[0]" in text and "lr_decay" in text
    assert "experiments[1].recipes[0]" in text and "lrr" in text
    assert "schedule.iteratons" in text and "did you mean 'iterations'" in text
    assert len(lines) >= 4


def test_a_typo_in_several_keys_of_one_experiment_is_listed_whole(roots) -> None:
    from benchmark.errors import ConfigError
    from benchmark.grid import load_grid

    text = TINY_GRID.read_text().replace("iterations: 6", "iteratons: 6").replace(
        "{name: ft}", "{name: ft, lr_decay: 2}").replace("family: demo", "family: dmeo")
    path = roots / "several.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_grid(str(path), resolve_data=False)
    lines = str(err.value).splitlines()
    assert len(lines) == 3 and all(ln.startswith(f"{path}: experiments[0].") for ln in lines)
    for part in ("'dmeo'", "iteratons", "lr_decay"):
        assert any(part in ln for ln in lines), (part, lines)
