"""COCO evaluation: the published known answer, difficult boxes, empty results, the CLI."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.errors import ConfigError, DataError
from benchmark.evaluation import evaluate_predictions
from benchmark.evaluation.coco import COCO_KEYS, coco_summary

REPO = Path(__file__).resolve().parents[2]


def _fixtures() -> Path:
    """The known-answer files, copied into the repository with their provenance
    (tests/fixtures/coco_known_answer/EXPECTED.md)."""
    return REPO / "tests" / "fixtures"


@pytest.fixture(scope="module")
def known() -> tuple[Path, Path, dict[str, float]]:
    base = _fixtures() / "coco_known_answer"
    text = (base / "EXPECTED.md").read_text()
    numbers = [float(x) for x in re.findall(r"^\s{4}(\d\.\d+)\s*$", text, flags=re.M)]
    assert len(numbers) == 12, "EXPECTED.md should list the 12 summary numbers"
    return (
        base / "instances_val2014_100.json",
        base / "instances_val2014_fakebbox100_results.json",
        dict(zip(COCO_KEYS, numbers, strict=True)),
    )


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmark.evaluation", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_known_answer_function_paths_and_dicts(known) -> None:
    gt_path, dt_path, expected = known
    for gt, dt in [
        (gt_path, dt_path),
        (json.loads(gt_path.read_text()), json.loads(dt_path.read_text())),
    ]:
        got = coco_summary(gt, dt)
        assert list(got) == list(COCO_KEYS)
        for k in COCO_KEYS:
            assert got[k] == pytest.approx(expected[k], abs=1e-9), k


def test_known_answer_cli(known, tmp_path: Path) -> None:
    gt_path, dt_path, expected = known
    out = tmp_path / "sub" / "summary.json"
    proc = _run_cli("--gt", str(gt_path), "--predictions", str(dt_path), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    printed = dict(line.split() for line in proc.stdout.strip().splitlines())
    assert list(printed) == list(COCO_KEYS)
    for k in COCO_KEYS:
        assert float(printed[k]) == pytest.approx(expected[k], abs=5e-4)
    written = json.loads(out.read_text())
    assert set(written) == set(COCO_KEYS)
    for k in COCO_KEYS:
        assert written[k] == pytest.approx(expected[k], abs=1e-9), k
    assert [p.name for p in out.parent.iterdir()] == ["summary.json"]  # no temp file left


def test_inputs_not_mutated_and_quiet(known, capsys) -> None:
    gt_path, dt_path, _ = known
    gt, dt = json.loads(gt_path.read_text()), json.loads(dt_path.read_text())
    gt0, dt0 = copy.deepcopy(gt), copy.deepcopy(dt)
    coco_summary(gt, dt)
    assert gt == gt0 and dt == dt0
    assert capsys.readouterr().out == ""
    coco_summary(gt, dt, verbose=True)
    assert "Average Precision" in capsys.readouterr().out


def _gt(*anns: dict) -> dict:
    return {
        "images": [{"id": 1, "file_name": "1.jpg", "width": 400, "height": 400}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": list(anns),
    }


def _ann(i: int, bbox: list[float], difficult: int = 0) -> dict:
    return {
        "id": i,
        "image_id": 1,
        "category_id": 1,
        "bbox": bbox,
        "area": bbox[2] * bbox[3],
        "iscrowd": 0,
        "difficult": difficult,
    }


def _det(bbox: list[float], score: float) -> dict:
    return {"image_id": 1, "category_id": 1, "bbox": bbox, "score": score}


X, Y, Z = [10, 10, 50, 50], [100, 100, 50, 50], [200, 200, 50, 50]  # all "medium" (2500 px)


def test_difficult_is_neither_tp_nor_fn() -> None:
    # X normal; Y, Z difficult. A det on Y (score .9, exact) is ignored, not a FP; the det on
    # X is a TP; Z, never detected, is not a miss. One TP, no FP, one positive: AP = AR = 1.
    gt = _gt(_ann(1, X), _ann(2, Y, difficult=1), _ann(3, Z, difficult=1))
    got = coco_summary(gt, [_det(Y, 0.9), _det(X, 0.8)])
    for k in ("AP", "AP50", "AP75", "APm", "AR10", "AR100", "ARm"):
        assert got[k] == pytest.approx(1.0), k
    # pycocotools cuts to maxDets before ignoring: the single top detection is the one on Y.
    assert got["AR1"] == 0.0
    # The same boxes without the flag: recall stops at 2/3, so AP < 1.
    plain = _gt(_ann(1, X), _ann(2, Y), _ann(3, Z))
    assert coco_summary(plain, [_det(Y, 0.9), _det(X, 0.8)])["AR100"] == pytest.approx(2 / 3)


def test_difficult_box_absorbs_one_detection_only() -> None:
    # Difficult boxes follow pycocotools' rule for GT outside the area range: normal IoU,
    # matched once. Y (.95) ignored, duplicate Y (.9) a FP, X (.8) a TP: precision 1/2 at
    # recall 1, so every interpolated precision is 1/2 and AP = 0.5.
    gt = _gt(_ann(1, X), _ann(2, Y, difficult=1))
    got = coco_summary(gt, [_det(Y, 0.95), _det(Y, 0.9), _det(X, 0.8)])
    assert got["AP"] == pytest.approx(0.5) and got["AR100"] == 1.0


def test_empty_predictions() -> None:
    # One medium box: every AP/AR is 0, except the small and large ranges, which have no
    # ground truth and are -1 as pycocotools reports them.
    got = coco_summary(_gt(_ann(1, X)), [])
    minus = {"APs", "APl", "ARs", "ARl"}
    assert got == {k: (-1.0 if k in minus else 0.0) for k in COCO_KEYS}


def test_empty_predictions_on_fixture_are_zero(known) -> None:
    gt_path, _, _ = known
    assert coco_summary(gt_path, []) == {k: 0.0 for k in COCO_KEYS}


@pytest.mark.parametrize(
    ("det", "field", "problem"),
    [
        (
            {"image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1},
            "image_id=7",
            "unknown image id",
        ),
        (
            {"image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 1},
            "category_id=3",
            "unknown category id",
        ),
        (
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 1},
            "bbox=[0, 0, 1]",
            "expected",
        ),
        ({"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 1], "score": 1}, "bbox=", "negative"),
        ({"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}, "score=None", "missing"),
        (
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "x"},
            "score='x'",
            "expected a number",
        ),
    ],
)
def test_bad_predictions_name_file_index_field_value(tmp_path, det, field, problem) -> None:
    path = tmp_path / "dt.json"
    path.write_text(json.dumps([_det(X, 0.5), det]))
    with pytest.raises(DataError) as err:
        coco_summary(_gt(_ann(1, X)), path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: [1].{field}") and problem in msg


def test_unknown_protocol() -> None:
    with pytest.raises(ConfigError, match="protocol='voc12'"):
        evaluate_predictions(_gt(_ann(1, X)), [], "voc12")


def test_cli_voc_protocol_json(known, tmp_path: Path) -> None:
    gt_path, dt_path, _ = known
    out = tmp_path / "voc.json"
    proc = _run_cli(
        "--gt",
        str(gt_path),
        "--predictions",
        str(dt_path),
        "--json",
        str(out),
        "--protocol",
        "voc07",
    )
    assert proc.returncode == 0, proc.stderr
    written = json.loads(out.read_text())
    assert set(written) == {"AP", "AP50", "AP75", "per_class", "per_class_ap50"}
    assert written == json.loads(json.dumps(evaluate_predictions(gt_path, dt_path, "voc07")))
    assert proc.stdout.splitlines()[0] == f"AP     {written['AP']:.3f}"
    assert "person" in proc.stdout


@pytest.mark.parametrize("case", ["missing", "malformed", "not_a_list"])
def test_cli_errors_one_line_exit_2(known, tmp_path: Path, case: str) -> None:
    gt_path, _, _ = known
    dt = tmp_path / "dt.json"
    if case == "malformed":
        dt.write_text("[{")
    elif case == "not_a_list":
        dt.write_text('{"a": 1}')
    proc = _run_cli("--gt", str(gt_path), "--predictions", str(dt))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {dt}: "), proc.stderr


def test_faster_coco_eval_backend_gives_the_known_answer_to_1e6(known) -> None:
    """faster-coco-eval, the C++ drop-in, reproduces the 12 numbers of EXPECTED.md to 1e-6
    (its bar for a faster drop-in); the largest difference is printed for the record."""
    gt_path, dt_path, expected = known
    got = coco_summary(gt_path, dt_path, backend="faster_coco_eval")
    diffs = {k: abs(got[k] - expected[k]) for k in COCO_KEYS}
    print(f"faster_coco_eval: largest |difference| {max(diffs.values()):.2e}")
    assert max(diffs.values()) <= 1e-6, diffs
    cli = _run_cli("--gt", str(gt_path), "--predictions", str(dt_path),
                   "--backend", "faster_coco_eval")
    assert cli.returncode == 0 and "0.505" in cli.stdout


def test_faster_backend_refuses_difficult_boxes_and_unknown_backends() -> None:
    gt = {"images": [{"id": 1, "file_name": "a", "width": 10, "height": 10}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5],
                           "iscrowd": 0, "difficult": 1}],
          "categories": [{"id": 1, "name": "a"}]}
    with pytest.raises(ConfigError, match="difficult boxes"):
        coco_summary(gt, [], backend="faster_coco_eval")
    with pytest.raises(ConfigError, match="backend='nope'"):
        coco_summary(gt, [], backend="nope")
