"""benchmark.report.records / frames / aggregation: reading and validating records, frames,
variants, mean ± std."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmark.evaluation.coco import COCO_KEYS
from benchmark.report import aggregation as agg
from benchmark.report import frames as fr
from benchmark.report import records as rc

CORRUPTIONS = ("gaussian_noise", "fog")
OOD = ("demo_stylized", "demo_sketch", "demo_inked")


def make_record(
    *,
    family: str = "demo",
    backbone: str = "resnet18",
    weights: str = "imagenet",
    recipe: str = "ft",
    seed: int = 0,
    id_ap: float | None = 0.5,
    ood: dict[str, float] | None = None,
    corruption: dict[str, dict[str, float]] | None = None,
    rgn: float | None = 0.3,
    code_version: str = "0.1.0",
    datasets: dict[str, str] | None = None,
    id_split: str = "demo_test",
    params: dict[str, Any] | None = None,
    corruption_base: str | None = "demo_test",
) -> dict[str, Any]:
    """A schema-1 run record as benchmark.pipeline writes it (values chosen by the test)."""
    ood = {s: 0.3 for s in OOD} if ood is None else ood
    corruption = ({c: {"3": 0.35} for c in CORRUPTIONS} if corruption is None else corruption)
    spec = {
        "benchmark": family, "engine": "frcnn_fpn_small",
        "backbone": {"name": backbone, "weights": weights, "freeze_at": None},
        "recipe": {"name": recipe, "params": params or {}}, "train_split": "demo_train",
        "id_split": id_split, "ood_splits": sorted(ood),
        "corruption": ({"base": corruption_base, "names": sorted(corruption),
                        "severities": sorted({int(s) for d in corruption.values() for s in d})}
                       if corruption else None),
        "schedule": {"iterations": 300}, "seed": seed, "data": {},
    }
    datasets = datasets or {}
    fp = hashlib.sha256(json.dumps([spec, code_version, datasets], sort_keys=True)
                        .encode()).hexdigest()[:16]
    metrics: dict[str, dict[str, float | None]] = {}
    if id_ap is not None:
        metrics[id_split] = {"AP": id_ap, "AP50": min(1.0, 1.5 * id_ap), "AP75": 0.9 * id_ap}
    for s, v in ood.items():
        metrics[s] = {"AP": v, "AP50": min(1.0, 1.5 * v)}
    for c, by_sev in corruption.items():
        for sev, v in by_sev.items():
            metrics[f"{corruption_base}-C.{c}.{sev}"] = {"AP": v}
    conds = [v for d in corruption.values() for v in d.values()]
    mpc = sum(conds) / len(conds) if conds else None
    ood_mean = sum(ood.values()) / len(ood) if ood else None
    summary = {
        "id_ap": id_ap, "id_ap50": metrics.get(id_split, {}).get("AP50"), "ood": ood or None,
        "ood_mean": ood_mean, "ood_mean_ap50": None,
        "gap": (id_ap - ood_mean) if id_ap is not None and ood_mean is not None else None,
        "P": id_ap if conds else None, "mPC": mpc,
        "rPC": (mpc / id_ap) if conds and id_ap else None, "corruption": corruption or None,
    }
    return {
        "schema": 1, "fingerprint": fp, "grid": "test", "spec": spec, "metrics": metrics,
        "summary": summary,
        "rgn": None if rgn is None else {
            "rgn": rgn, "rgn_l2": rgn / 10, "n_batches": 10, "per_tensor": {},
            # as the training loop records it: DP-FT measures at the DP checkpoint
            "at": "dp_checkpoint" if recipe == "dp_ft" else "pretrained"},
        "provenance": {"code_version": code_version, "results_version": 1,
                       "git_commit": "0123456789abcdef", "git_dirty": False, "torch": "2.14.1",
                       "device": "cpu", "datasets": datasets, "wall_time_s": 10.0},
        "artifacts": {"checkpoint": f"runs/{fp}/final.pt",
                      "predictions": {s: f"runs/{fp}/predictions/{s}.json" for s in metrics}},
    }



def set_metrics(rec: dict[str, Any], metrics: dict[str, dict[str, Any]]) -> None:
    """A record's per-split metrics and the summary they give (ID ``demo_test``, OOD
    ``demo_sketch``, corruption ``demo_test-C.fog.3``), as the pipeline would record them."""
    rec["metrics"] = metrics
    s = rec["summary"]
    s["id_ap"] = s["P"] = metrics["demo_test"]["AP"]
    s["ood"] = {"demo_sketch": metrics["demo_sketch"]["AP"]}
    s["ood_mean"] = metrics["demo_sketch"]["AP"]
    s["gap"] = s["id_ap"] - s["ood_mean"]
    s["mPC"] = metrics["demo_test-C.fog.3"]["AP"]
    s["rPC"] = s["mPC"] / s["P"]
    s["corruption"] = {"fog": {"3": s["mPC"]}}

def write_record(results: Path, record: dict[str, Any]) -> Path:
    d = results / "runs" / record["fingerprint"]
    d.mkdir(parents=True, exist_ok=True)
    path = d / "record.json"
    path.write_text(json.dumps(record))
    return path


# ---- reading ----------------------------------------------------------------------------------
def test_corrupt_and_invalid_records_are_skipped_with_a_named_reason(tmp_path: Path) -> None:
    good = make_record()
    write_record(tmp_path, good)
    bad_dir = tmp_path / "runs"
    cases = {
        "truncated": '{"schema": 1, "fingerprint": "trunc',
        "empty": "",
        "schema": json.dumps({**make_record(seed=1), "schema": 7}),
        "mismatch": json.dumps(make_record(seed=2)),
        "badap": json.dumps({**make_record(seed=3), "metrics": {"demo_test": {"AP": 7.5}}}),
        "nospec": json.dumps({"schema": 1, "fingerprint": "nospec", "metrics": {}}),
        "badseed": json.dumps({**make_record(seed=4),
                               "spec": {**make_record()["spec"], "seed": "x"}}),
        "badood": json.dumps({**make_record(seed=5),
                              "spec": {**make_record()["spec"], "ood_splits": "demo_sketch"}}),
        "badpreds": json.dumps({**make_record(seed=6), "artifacts": {"predictions": ["x"]}}),
        "badsev": json.dumps({**make_record(seed=7), "summary": {
            **make_record()["summary"], "corruption": {"fog": {"high": 0.2}}}}),
    }
    for name, text in cases.items():
        (bad_dir / name).mkdir(parents=True)
        (bad_dir / name / "record.json").write_text(text)
    # a record whose fingerprint matches its directory but is otherwise broken
    for name in ("badap", "nospec", "badseed", "schema", "badood", "badpreds", "badsev"):
        d = json.loads((bad_dir / name / "record.json").read_text())
        d["fingerprint"] = name
        (bad_dir / name / "record.json").write_text(json.dumps(d))
    (bad_dir / "pending").mkdir()
    (bad_dir / "failedrun").mkdir()
    (bad_dir / "failedrun" / "failed.json").write_text("{}")

    loaded = rc.load_records(tmp_path)
    assert [r.fingerprint for r in loaded.records] == [good["fingerprint"]]
    reasons = {Path(s.path).parent.name: s.reason for s in loaded.skipped}
    assert set(reasons) == set(cases)
    assert reasons["truncated"].startswith("malformed JSON (truncated?)")
    assert reasons["empty"] == "empty file"
    assert "schema=7" in reasons["schema"]
    assert "does not match its directory 'mismatch'" in reasons["mismatch"]
    assert "metrics.demo_test.AP=7.5" in reasons["badap"]
    assert "missing key 'spec'" in reasons["nospec"]
    assert "spec.seed='x'" in reasons["badseed"]
    assert "spec.ood_splits='demo_sketch'" in reasons["badood"]
    assert "artifacts.predictions" in reasons["badpreds"]
    assert "severity 'high' is not an int" in reasons["badsev"]
    assert all(s.path.startswith(f"{tmp_path.name}/runs/") for s in loaded.skipped)
    assert (loaded.pending, loaded.failed) == (1, 1)
    frames = fr.load_frames(tmp_path, workers=1)
    assert frames.n_records == 1 and len(frames.skipped) == len(cases)


def test_missing_results_directory_is_empty(tmp_path: Path) -> None:
    frames = fr.load_frames(tmp_path / "nothing")
    assert frames.runs.empty and frames.long.empty and frames.skipped == []


# ---- frames ---------------------------------------------------------------------------------
def test_runs_frame_wide_columns_and_missing_values(tmp_path: Path) -> None:
    rec = make_record(ood={"demo_sketch": 0.2, "demo_inked": -1}, rgn=None,
                      corruption={"fog": {"1": 0.4, "3": 0.2}})
    rec["metrics"]["demo_inked"]["AP50"] = -1.0  # no ground truth: every AP is -1
    rec["summary"].update(ood_mean=None, gap=None)  # (make_record would average the -1 in)
    runs = _runs(tmp_path, [rec])
    row = runs.iloc[0]
    assert row["ood/demo_sketch"] == 0.2
    assert math.isnan(row["ood/demo_inked"])  # pycocotools' -1 (no GT) → missing
    assert row["corr/fog/1"] == 0.4 and row["corr/fog/3"] == 0.2
    assert math.isnan(row["rgn"]) and math.isnan(row["rgn_l2"])
    assert row["backbone_label"] == "resnet18[imagenet]"
    assert row["recipe_label"] == "ft"


def test_long_frame_has_one_row_per_run_and_split(tmp_path: Path) -> None:
    recs = [make_record(seed=s) for s in range(2)]
    for r in recs:
        write_record(tmp_path, r)
    frames = fr.load_frames(tmp_path, workers=1)
    long = frames.long
    assert len(long) == 2 * (1 + 3 + 2)
    roles = long[long.fingerprint == recs[0]["fingerprint"]].set_index("split")["role"]
    assert roles["demo_test"] == "id"
    assert roles["demo_sketch"] == "ood"
    assert roles["demo_test-C.fog.3"] == "corrupted"
    fog = long[long.split == "demo_test-C.fog.3"].iloc[0]
    assert fog["corruption"] == "fog" and fog["severity"] == 3
    assert set(COCO_KEYS) <= set(long.columns)
    assert {"code_version", "git_commit", "dataset_fingerprint", "record_sha256"} <= set(
        long.columns)
    assert long[long.split == "demo_test"]["AP"].tolist() == [0.5, 0.5]


def test_parallel_loading_gives_the_same_frames(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for s in range(12):
        write_record(tmp_path, make_record(seed=s, id_ap=0.3 + 0.01 * s,
                                           backbone=("resnet18", "resnet50")[s % 2]))
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "record.json").write_text("{")
    serial = fr.load_frames(tmp_path, workers=1)
    monkeypatch.setattr(fr, "PARALLEL_MIN_RECORDS", 2)
    parallel = fr.load_frames(tmp_path, workers=2)
    pd.testing.assert_frame_equal(serial.runs.drop(columns=["datasets", "predictions"]),
                                  parallel.runs.drop(columns=["datasets", "predictions"]))
    pd.testing.assert_frame_equal(serial.long, parallel.long)
    assert serial.skipped == parallel.skipped and len(serial.skipped) == 1


# ---- aggregation ---------------------------------------------------------------------------------
def test_mean_std_and_n_by_hand() -> None:
    runs = pd.DataFrame({
        "key": ["a", "a", "a", "b"], "seed": [0, 1, 2, 0],
        "ap": [0.40, 0.42, 0.44, 0.30], "ood": [0.2, np.nan, 0.3, np.nan],
    })
    out = agg.aggregate(runs, ["key"], ["ap", "ood"]).set_index("key")
    assert out.loc["a", "ap|mean"] == pytest.approx(0.42)
    assert out.loc["a", "ap|std"] == pytest.approx(0.02)  # sample std: sqrt(0.0008 / 2)
    assert out.loc["a", "ap|n"] == 3
    assert out.loc["a", "ood|mean"] == pytest.approx(0.25)
    assert out.loc["a", "ood|n"] == 2
    assert out.loc["a", "seeds"] == (0, 1, 2) and out.loc["a", "n_runs"] == 3
    assert out.loc["b", "ood|n"] == 0
    assert math.isnan(out.loc["b", "ap|std"])


def test_format_cell() -> None:
    assert agg.format_cell(0.42, 0.02, 3) == "42.0 ± 2.0 (n=3)"
    assert agg.format_cell(0.41, float("nan"), 1) == "41.0 (n=1)"
    assert agg.format_cell(float("nan"), float("nan"), 0) == "—"
    assert agg.format_cell(0.5, 0.1, 0) == "—"
    assert agg.format_cell(-0.0004, 0.001, 2, signed=True) == "+0.0 ± 0.1 (n=2)"
    assert agg.format_cell(0.01234, 0.0, 2, signed=True) == "+1.2 ± 0.0 (n=2)"
    assert agg.format_cell(0.299, 0.0011, 4, scale=1.0, digits=3) == "0.299 ± 0.001 (n=4)"


def _runs(tmp_path: Path, records: list[dict[str, Any]]) -> pd.DataFrame:
    """The runs frame of ``records`` (written under ``tmp_path``, read back)."""
    for r in records:
        write_record(tmp_path, r)
    return fr.load_frames(tmp_path, workers=1, long=False).runs


def test_variants_split_code_versions_and_conflicting_manifests(tmp_path: Path) -> None:
    a0 = make_record(seed=0, datasets={"demo_test": "x1"})
    a1 = make_record(seed=1, datasets={"demo_test": "x1", "demo_sketch": "s1"})
    new_code = make_record(seed=2, datasets={"demo_test": "x1"}, code_version="0.2.0")
    new_data = make_record(seed=3, datasets={"demo_test": "x2"})
    other_cfg = make_record(seed=0, recipe="dp", datasets={"demo_test": "x2"})
    runs = _runs(tmp_path, [a0, a1, new_code, new_data, other_cfg])
    runs["variant"] = agg.assign_variants(runs)
    v = dict(zip(runs.fingerprint, runs.variant, strict=True))
    assert v[a0["fingerprint"]] == v[a1["fingerprint"]]  # compatible manifests
    assert len({v[a0["fingerprint"]], v[new_code["fingerprint"]],
                v[new_data["fingerprint"]]}) == 3
    assert v[other_cfg["fingerprint"]] == 0  # its own configuration


def test_labels_and_config_keys() -> None:
    assert agg.backbone_label({"name": "resnet50", "weights": "/ckpt/dir/swsl.pth"}) == \
        "resnet50[swsl.pth]"
    assert agg.recipe_label({"name": "reg", "params": {"c": 0.1, "s": "rgn"}}) == \
        "reg(c=0.1,s=rgn)"
    spec = make_record()["spec"]
    assert agg.config_key(spec) == agg.config_key({**spec, "seed": 5})
    assert agg.config_key(spec) != agg.config_key({**spec, "schedule": {"iterations": 1}})
