"""Grids that do not validate stop before anything runs, naming file, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.errors import ConfigError, DataError, MissingFileError
from benchmark.grid import load_grid
from benchmark.run import main as run_main
from tests.conftest import TINY_GRID


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = TINY_GRID.read_text()
    assert old in text
    path = tmp_path / "grid.yaml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("name: resnet18", "name: resnet19", ["backbones", "resnet19", "known:", "resnet18"]),
        ("{name: ft}", "{name: fine_tune}", ["recipe", "fine_tune", "known:", "dp_ft"]),
        ("{name: ft}", "{name: ft, lr_decay: 2}", ["recipe 'ft'", "lr_decay"]),
        ("iterations: 6", "iterations: six", ["schedule.iterations", "'six'"]),
        ("batch_size: 2", "batch_size: [2]", ["schedule.batch_size", "[2]"]),
        ("engine: frcnn_fpn_small", "engine: retina", ["engine", "retina"]),
        ("names: [gaussian_noise, fog]", "names: [gaussian_noise, smog]", ["smog"]),
        ("seeds: [0]", "seeds: 0", ["seeds", "expected a list"]),
        ("family: demo", "family: pascl", ["family", "pascl"]),
        ("    seeds: [0]", "    seeds: [0]\n    sedes: [1]", ["sedes", "unknown key"]),
        ("severities: [3]", "severities: [7]", ["severities", "7"]),
        # a schedule typo: named with the nearest known key, not as a TypeError
        ("iterations: 6", "iteratons: 6",
         ["schedule.iteratons", "unknown key", "did you mean 'iterations'"]),
        ("weights: none", "weights: nnoe", ["'nnoe'", "did you mean 'none'", "'imagenet'"]),
    ],
)
def test_invalid_grid_is_rejected_with_file_field_value(tmp_path, old, new, expected):
    path = _variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as err:
        load_grid(str(path), resolve_data=False)
    msg = str(err.value)
    assert str(path) in msg
    for part in expected:
        assert part in msg, msg


def test_yaml_syntax_error_names_line(tmp_path):
    path = _variant(tmp_path, "lr: 0.01", "lr: [0.01")
    with pytest.raises(ConfigError, match=r"invalid YAML \(line \d+"):
        load_grid(str(path), resolve_data=False)


def test_unknown_split_and_missing_image_caught_before_running(bench_env, tmp_path, capsys):
    path = _variant(tmp_path, "ood_splits: [demo_stylized,", "ood_splits: [demo_cartoon,")
    assert run_main(["--grid", str(path), "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "demo_cartoon" in err and "not found" in err
    assert not (bench_env / "runs").exists()


def test_missing_image_file_names_file_field_value(tmp_path):
    import shutil

    from benchmark.data.demo import build_demo

    root = tmp_path / "data"
    build_demo(root, n_train=2, n_test=1, progress=False)
    first = sorted((root / "demo_sketch" / "images").iterdir())[0]
    first.unlink()
    with pytest.raises(DataError) as err:
        load_grid(str(_variant(tmp_path, "seeds: [0]", "seeds: [0]")), data_root=root)
    msg = str(err.value)
    assert "demo_sketch" in msg and "file_name" in msg and first.name in msg
    shutil.rmtree(root)


def test_unknown_grid_name_lists_known():
    with pytest.raises(ConfigError, match="known: .*demo"):
        load_grid("no_such_grid")


def test_the_demo_grid_plans_on_a_fresh_clone(capsys, tmp_path, monkeypatch):
    """No prepared data, no weight files: the demo's weights ship in a package."""
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    grid = load_grid("demo", resolve_data=False)
    assert grid.runs and len({r.fingerprint for r in grid.runs}) == len(grid.runs)
    assert run_main(["--grid", "demo", "--dry-run"]) == 0
    assert "grid 'demo'" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["full", "mind_back_pascal", "coco_c", "robust_transfer_coco"])
def test_shipped_grids_name_their_missing_weights_before_anything(name, capsys, tmp_path,
                                                                  monkeypatch):
    """Every shipped grid expands (its backbones, recipes, splits and schedule validate); on
    a machine without its checkpoints the dry run lists every missing weights file — its
    path, where it is published and the command that fetches it — and exits 1 once."""
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "weights"))
    assert run_main(["--grid", name, "--dry-run"]) == 1
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert "lacks" in line and "see the listing" in line
    missing = [ln for ln in out.splitlines() if ln.strip().startswith("missing    weights")]
    assert missing and all(str(tmp_path / "weights") in ln for ln in missing)
    assert "://" in out and f"python -m benchmark.weights fetch --grid {name}" in out


def test_dry_run_lists_every_missing_input_at_once(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "weights"))
    assert run_main(["--grid", "full", "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1
    weights = [ln for ln in out.splitlines() if ln.strip().startswith("missing    weights")]
    splits = [ln for ln in out.splitlines() if ln.strip().startswith("missing    split")]
    assert len(weights) >= 3 and len(splits) >= 5  # all of them, not the first one only


def test_missing_weights_file_is_caught_before_running(bench_env, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "w"))
    path = _variant(
        tmp_path, "{name: resnet18, weights: none}", "{name: resnet18, weights: r18.pth}"
    )
    with pytest.raises(MissingFileError, match=str(tmp_path / "w" / "r18.pth")):
        load_grid(str(path))
