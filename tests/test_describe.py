"""python -m benchmark.describe: what a cell will run, read off the detector built with random
weights, with no data and no weight files present (tmp BENCH roots).

Expected figures are detectron2's own, as tests/test_engine_geometry.py derives them
(detectron2 built from source, faster_rcnn_R_50_FPN_1x with 20 classes):
41,392,436 parameters, 41,170,036 trainable (FREEZE_AT=2 freezes 222,400), 42 trainable
backbone tensors, and on an 800 × 1216 input P2–P5 at strides 4–32 plus P6 by max-pooling:
200·304, 100·152, 50·76, 25·38, ⌈25/2⌉·⌈38/2⌉ = 13·19 locations × 3 aspect ratios.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.describe import main

GRID = """\
name: r50_pascal
engine: frcnn_fpn
schedule: {iterations: 80000, batch_size: 2, lr: 0.0025, policy: step, steps: [50000, 70000],
           warmup_iters: 500, test_size: 800, max_size: 1333,
           train_sizes: [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800]}
backbones: [{name: resnet50, weights: swsl_resnet50}]   # a catalogue file that is absent
recipes: [{name: ft}, {name: dp}]
seeds: [0, 1]
experiments:
  - family: pascal
    train_split: voc0712_trainval
    id_split: voc07_test
    ood_splits: [clipart_test, watercolor_test, comic_test]
"""


@pytest.fixture
def empty_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("BENCH_DATA", "BENCH_WEIGHTS", "BENCH_RESULTS", "BENCH_ARTIFACTS"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    return tmp_path


def test_describe_json_gives_detectron2s_r50_fpn(empty_roots: Path, capsys) -> None:
    grid = empty_roots / "g.yaml"
    grid.write_text(GRID)
    assert main(["--grid", str(grid), "--input", "800x1216", "--json"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert len(cells) == 4  # 2 recipes × 2 seeds
    ft = next(c for c in cells if "× ft " in c["label"])
    assert ft["fpn_levels"] == ["p2", "p3", "p4", "p5", "p6"]
    levels = ft["anchors"]["levels"]
    assert [(x["stride"], x["sizes"], x["count"]) for x in levels] == [
        (4, [32], 200 * 304 * 3), (8, [64], 100 * 152 * 3), (16, [128], 50 * 76 * 3),
        (32, [256], 25 * 38 * 3), (64, [512], 13 * 19 * 3)]
    assert ft["anchors"]["total"] == 242_991
    assert ft["params"] == {"total": 41_392_436, "trainable": 41_170_036}
    assert ft["trainable_tensors"] == 42
    assert ft["splits"] == {"voc07_test": "voc07", "clipart_test": "voc",
                            "watercolor_test": "voc", "comic_test": "voc"}
    assert ft["protocol"]["schedule"]["iterations"] == 80000
    assert ft["classes"]["count"] == 20
    # DP: the body trains nothing. torchvision's ResNet-50 has 25,557,032 parameters, of which
    # fc 2048·1000 + 1000 = 2,049,000 and BatchNorm (frozen here: buffers) 53,120, so the body
    # holds 23,454,912 and 41,392,436 − 23,454,912 = 17,937,524 train
    dp = next(c for c in cells if "× dp " in c["label"])
    assert dp["params"] == {"total": 41_392_436, "trainable": 17_937_524}
    assert dp["trainable_tensors"] == 0
    assert len({c["fingerprint"] for c in cells}) == 4


def test_describe_text_on_the_demo_grid(empty_roots: Path, capsys) -> None:
    assert main(["--grid", "demo"]) == 0  # no demo data generated under the tmp roots
    out = capsys.readouterr().out
    assert out.startswith("grid 'demo': 9 cells")
    # frcnn_fpn_small on a 160 × 160 test image: P3–P5 + P6, one size per level 16–128
    assert ("anchors: p3 (stride 8, sizes 16) 1,200, p4 (stride 16, sizes 32) 300, "
            "p5 (stride 32, sizes 64) 75, p6 (stride 64, sizes 128) 27; total 1,602") in out
    assert ("protocol: detector.architecture faster_rcnn_fpn; detector.fpn P3-P5 + max-pooled "
            "P6, 64 channels, sum fusion;") in out
    assert "; input.channel_order weights; " in out and "; train_sizes [160];" in out


@pytest.mark.parametrize("text, problem", [
    ("name: x\nexperiments: [{family: demo}]\n", "experiments[0].engine: missing"),
    ("name: x\nexperiments: [\n", "invalid YAML"),
])
def test_bad_grid_is_one_line_error(empty_roots: Path, capsys, text: str, problem: str) -> None:
    grid = empty_roots / "bad.yaml"
    grid.write_text(text)
    assert main(["--grid", str(grid)]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()  # one line per problem of the grid, each an error line
    assert lines and all(ln.startswith("error: ") for ln in lines) and problem in err


def test_bad_input_size_is_refused(empty_roots: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--grid", "demo", "--input", "800by1216"])
    assert e.value.code == 2


def test_each_cell_is_printed_as_soon_as_it_is_built(empty_roots: Path, capsys,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """mind_back_pascal has 168 cells: the first must not wait for the last."""
    import benchmark.describe as describe

    real, built = describe.describe_cell, []

    def second_cell_interrupts(spec, *args):
        if built:
            assert "cell 1/" in capsys.readouterr().out  # already on the terminal
            raise KeyboardInterrupt
        built.append(spec)
        return real(spec, *args)

    monkeypatch.setattr(describe, "describe_cell", second_cell_interrupts)
    with pytest.raises(KeyboardInterrupt):
        main(["--grid", "demo"])
    assert len(built) == 1


def test_only_and_set_narrow_and_change_what_is_described(empty_roots: Path, capsys) -> None:
    assert main(["--grid", "demo", "--only", "backbone=resnet18", "--set",
                 "schedule.test_size=128", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "--only backbone=resnet18" in out["grid"]
    assert [c["label"].split(" × ")[0] for c in out["cells"]] == ["resnet18[none]"]
    assert out["cells"][0]["anchors"]["input"] == [128, 128]
