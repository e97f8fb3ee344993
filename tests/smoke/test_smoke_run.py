"""The smoke command end to end on a one-kind Pascal grid (stand-in VOC, Clipart, Watercolor
and Comic converted by the real converters): a leaderboard in its own root, records marked
and never counted elsewhere, and a failure as one line naming the kind and the stage."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.compare import main as compare_main
from benchmark.models import ENGINES
from benchmark.report.records import load_records
from benchmark.smoke.standin_data import STANDINS, StandIn, registered
from benchmark.status import cell_states
from tests.smoke.conftest import smoke, write_grid

KIND = "pascal/frcnn_fpn_small/efficientnet_lite0[imagenet]/ft/b2@480-800/800<=1333"


def test_smoke_renders_a_leaderboard_in_its_own_root_and_is_never_counted(
        bench_env: Path, tmp_path: Path, smoke_root: Path, capsys: pytest.CaptureFixture) -> None:
    grid = write_grid(tmp_path)
    assert smoke(grid, smoke_root, inline=False) == 0  # the kind in a process of its own
    out = capsys.readouterr().out
    root = smoke_root / "pascal_small"
    assert (root / "BENCHMARKS.md").is_file()
    assert "efficientnet" in (root / "BENCHMARKS.md").read_text().lower()
    assert "splits voc0712_trainval, voc07_test: absent; stand-in voc" in out
    assert f"[1/1] ok {KIND}: " in out and " MB" in out  # two seeds, one kind; its peak RSS
    assert "cost sheet of grid 'pascal_small': 2 cells, 2 trainings" in out
    assert "160,000 iterations" in out
    (record_path,) = (root / "results" / "runs").glob("*/record.json")
    record = json.loads(record_path.read_text())
    assert record["smoke"] is True and record["spec"]["schedule"]["iterations"] == 1
    assert set(record["metrics"]) == {"voc07_test", "clipart_test", "watercolor_test",
                                      "comic_test", "voc07_test-Cbgr.fog.3"}
    assert not bench_env.exists()  # nothing in the real results root

    # a smoke record copied into a real results root is never a result there
    shutil.copytree(record_path.parent, bench_env / "runs" / record_path.parent.name)
    loaded = load_records(bench_env)
    assert loaded.records == [] and "smoke-test record" in loaded.skipped[0].reason
    (state,) = cell_states([record["fingerprint"]], results=bench_env)
    assert state.state != "done" and "smoke-test record" in state.detail
    assert compare_main([str(root / "results"), str(bench_env)]) == 2
    assert "a smoke test's root" in capsys.readouterr().err


def _broken_convert(raw: Path, opts):
    """A converter with a bug: it reads a key the layout does not have."""
    return [{}["Annotations"]]


def test_a_broken_converter_fails_in_one_line_naming_kind_and_stage(
        bench_env: Path, tmp_path: Path, smoke_root: Path, capsys: pytest.CaptureFixture) -> None:
    broken = replace(STANDINS["clipart"], convert=_broken_convert)
    with registered(broken):
        assert smoke(write_grid(tmp_path), smoke_root) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line]
    assert err == [f"smoke FAILED: {KIND} at convert: prepare clipart: KeyError: 'Annotations'"]
    assert isinstance(STANDINS["clipart"], StandIn) and STANDINS["clipart"].convert \
        is not _broken_convert


def test_a_head_with_the_wrong_class_count_fails_at_train(
        bench_env: Path, tmp_path: Path, smoke_root: Path, capsys: pytest.CaptureFixture) -> None:
    small = ENGINES.get("frcnn_fpn_small")

    def one_class_head(spec, num_classes: int):
        return small(replace(spec, engine="frcnn_fpn_small"), 1)  # VOC has 20 classes

    with ENGINES.registered("frcnn_one_class", one_class_head):
        code = smoke(write_grid(tmp_path, "wrong_head", engine="frcnn_one_class"), smoke_root)
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line]
    assert len(err) == 1, err
    assert err[0].startswith("smoke FAILED: pascal/frcnn_one_class/efficientnet_lite0[imagenet]"
                             "/ft/b2@480-800/800<=1333 at train: ")
    log = Path(err[0].rsplit("(log: ", 1)[1].rstrip(")"))
    assert "Traceback" in log.read_text()


def test_a_dry_run_lists_the_kinds_and_provides_nothing(
        bench_env: Path, tmp_path: Path, smoke_root: Path, capsys: pytest.CaptureFixture) -> None:
    grid = write_grid(tmp_path)
    assert smoke(grid, smoke_root, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "dry run: would run 1 kind(s) here" in out and KIND in out
    assert not smoke_root.exists()  # no stand-in made, nothing trained


def test_only_and_set_narrow_and_change_the_rehearsed_grid(
        bench_env: Path, tmp_path: Path, smoke_root: Path, capsys: pytest.CaptureFixture) -> None:
    grid = write_grid(tmp_path)
    assert smoke(grid, smoke_root, "--dry-run", "--only", "seed=1",
                 "--set", "schedule.batch_size=4") == 0
    out = capsys.readouterr().out
    assert "'pascal_small': 1 cells in 1 kinds" in out  # seeds [0, 1] -> seed 1
    assert KIND.replace("/b2@", "/b4@") in out
