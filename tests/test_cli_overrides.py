"""--set KEY=VALUE and --only KEY=VALUE: the grid changed before validation, the cells
selected after expansion (their parent stages kept)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.errors import ConfigError
from benchmark.grid import load_grid
from tests.conftest import TINY_GRID


def _load(**kwargs):
    return load_grid(str(TINY_GRID), resolve_data=False, check_weights=False, **kwargs)


def test_set_changes_every_experiment_typed_and_the_fingerprints_follow() -> None:
    plain = _load()
    grid = _load(overrides=["schedule.iterations=10", "seeds=[0, 1]"])
    assert {r.schedule.iterations for r in grid.runs} == {10}
    assert isinstance(grid.runs[0].schedule.iterations, int)
    assert len(grid.runs) == 2 * len(plain.runs)
    assert not {r.fingerprint for r in grid.runs} & {r.fingerprint for r in plain.runs}
    assert grid.name == "tiny" and "--set schedule.iterations=10" in grid.title


def test_set_reaches_one_recipe_of_one_experiment() -> None:
    grid = _load(overrides=["experiments.0.recipes.1.lr=0.03", "experiments.0.schedule.lr=1e-3"])
    dp = {r.recipe for r in grid.runs if r.recipe.name == "dp"}
    assert {dict(r.params)["lr"] for r in dp} == {0.03}
    assert {r.schedule.lr for r in grid.runs} == {0.001}


@pytest.mark.parametrize(("override", "expected"), [
    ("schedul.iterations=10", ["--set schedul.iterations", "did you mean 'schedule'"]),
    ("schedule.iteratons=10", ["schedule.iteratons", "did you mean 'iterations'"]),
    ("schedule.iterations=ten", ["schedule.iterations", "'ten'"]),
    ("experiments.4.seeds=[1]", ["--set experiments.4.seeds", "1 experiment(s)"]),
    ("experiments.0.sedes=[1]", ["--set experiments.0.sedes", "did you mean 'seeds'"]),
    ("seeds", ["--set 'seeds'", "KEY=VALUE"]),
])
def test_a_bad_override_is_one_line_naming_the_key(override: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        _load(overrides=[override])
    (line,) = str(err.value).splitlines()
    assert str(TINY_GRID) in line
    for part in expected:
        assert part in line, line


def test_only_selects_cells_and_keeps_the_stages_they_start_from() -> None:
    grid = _load(only=["recipe=dp_ft,backbone=resnet18"])
    assert {(r.backbone.name, r.recipe.name) for r in grid.runs} == {("resnet18", "dp_ft")}
    # DP-FT starts from the DP training: the pipeline still trains it first
    assert [c.recipe.name for c in grid.cells()] == ["dp", "dp_ft"]
    both = _load(only="recipe=ft|dp,seed=0")
    assert {r.recipe.name for r in both.runs} == {"ft", "dp"}
    assert "--only recipe=ft|dp,seed=0" in both.title


@pytest.mark.parametrize(("only", "expected"), [
    ("recipe=dpft", ["--only recipe=dpft", "did you mean 'dp_ft'"]),
    ("backbone=resnet50", ["--only backbone=resnet50", "resnet18"]),
    ("colour=red", ["--only 'colour=red'", "backbone, recipe, seed, weights, family"]),
])
def test_a_filter_matching_nothing_is_an_error_line(only: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        _load(only=only)
    (line,) = str(err.value).splitlines()
    for part in expected:
        assert part in line, line


def test_run_dry_run_plans_only_the_selected_cells(tmp_path: Path, monkeypatch, capsys) -> None:
    from benchmark.run import main

    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BENCH_ARTIFACTS", str(tmp_path / "artifacts"))
    main(["--grid", str(TINY_GRID), "--dry-run", "--set", "schedule.iterations=3",
          "--only", "backbone=resnet18,recipe=dp_ft"])
    out = capsys.readouterr().out
    planned = [ln for ln in out.splitlines() if ln.strip().startswith("unsubmitted")]
    assert len(planned) == 2 and all("resnet18" in ln for ln in planned)
    assert "--set schedule.iterations=3" in out
