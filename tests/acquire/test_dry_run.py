"""``run --grid G --dry-run`` on a fresh clone: every missing weights file and prepared split
in one listing (with the command that fetches each) and the plan; exit 1 once."""

from __future__ import annotations

import re

from benchmark.data.archives import DATASETS
from benchmark.models.checkpoints import catalogue
from benchmark.run import main as run_main

FULL_WEIGHTS = ("torchvision_resnet50", "convnext_base_1k", "efficientnet_b2_ra")


def test_full_lists_everything_missing_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "weights"))
    assert run_main(["--grid", "full", "--dry-run"]) == 1
    cap = capsys.readouterr()
    out = cap.out
    (err,) = cap.err.strip().splitlines()  # one error, not one per missing file
    assert err == "error: grid 'full' lacks 20 input(s); see the listing"
    for name in FULL_WEIGHTS:
        path = tmp_path / "weights" / catalogue.get(name).file
        assert re.search(rf"missing +weights +{name} .*{re.escape(str(path))}", out), name
        assert f"-> python -m benchmark.weights fetch --grid full --only {name}" in out
    splits = ["voc0712_trainval", "voc07_test", "clipart_test", "watercolor_test", "comic_test",
              "cityscapes_train", "cityscapes_val", "foggy_cityscapes_val", "bdd100k_val",
              "coco_train2017", "coco_val2017", *DATASETS["coco_o"].splits]
    for split in splits:
        assert re.search(rf"missing +split +{split} ", out), split
    listing = out[:out.index("(data missing")]
    assert "-C." not in listing  # corrupted splits are made on the fly from their base
    assert "VOCtest_06-Nov-2007.tar (451.0 MB)" in out  # sizes of what is to fetch
    raw = tmp_path / "data" / "raw" / "coco"
    assert f"python -m benchmark.prepare coco --download --raw {raw}" in out
    assert "needs a login" in out
    assert re.search(r"grid 'full' \(.*\): \d+ cells", out)  # and the plan of cells
    summary = out.split("these commands fetch them:")[1].strip().splitlines()
    assert summary[0] == "python -m benchmark.weights fetch --grid full"
    assert len(summary) == 1 + len({"voc", "clipart", "watercolor", "comic", "cityscapes",
                                    "foggy_cityscapes", "bdd100k", "coco", "coco_o"})


def test_nothing_missing_is_exit_0(tmp_path, monkeypatch, capsys):
    """The demo's weights ship in a package and its data is made by the run itself."""
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    assert run_main(["--grid", "demo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"generated +split +demo_train", out) and "grid 'demo'" in out
