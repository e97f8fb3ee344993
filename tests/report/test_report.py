"""benchmark.report: tables, ranking, ER, published rows, bootstrap, exports and --check."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmark.data.split import write_split
from benchmark.families import MICHAELIS_CARD, SAITO_CARD
from benchmark.models.geometry import FRCNN_FPN, detector_fields
from benchmark.report import build, cli, output, tables, uncertainty
from benchmark.report.options import Options
from tests.report.test_frames import make_record, set_metrics, write_record


def _options(tmp_path: Path, **kw: Any) -> Options:
    return Options(tmp_path / "results", tmp_path / "BENCHMARKS.md", **kw)


def _table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The first markdown table after ``heading``, as lists of cells (header excluded)."""
    part = markdown.split(heading, 1)[1]
    lines = [ln for ln in part.splitlines() if ln.startswith("|")]
    rows = []
    for ln in lines[2:]:
        if not ln.startswith("| "):
            break
        rows.append([c.strip() for c in ln.strip("|").split(" | ")])
        idx = lines.index(ln)
        if idx + 1 < len(lines) and part.find(lines[idx + 1]) - part.find(ln) > len(ln) + 1:
            break
    return rows


def _family(tmp_path: Path, name: str, **kw: Any) -> tables.FamilyTable:
    from benchmark.report import aggregation as agg
    from benchmark.report.frames import load_frames

    frames = load_frames(tmp_path / "results", workers=1)
    runs = frames.runs.copy()
    runs["code"] = [agg.code_key(r) for r in runs.to_dict("records")]
    runs["variant"] = agg.assign_variants(runs)
    return tables.FamilyTable(name, runs[runs.family == name], _options(tmp_path, **kw))


# ---- tables -------------------------------------------------------------------------------------
def _grid(tmp_path: Path) -> None:
    """3 backbones × {ft, dp}, 2 seeds each; OOD means chosen so the ranking is known."""
    values = {  # (backbone, recipe): [(id_ap, ood per domain) per seed]
        ("resnet18", "ft"): [(0.50, 0.20), (0.52, 0.22)],
        ("resnet18", "dp"): [(0.40, 0.30), (0.40, 0.26)],
        ("resnet50", "ft"): [(0.60, 0.35), (0.62, 0.37)],
        ("resnet50", "dp"): [(0.45, 0.10), (0.47, 0.12)],
        ("efficientnet_lite0", "ft"): [(0.55, 0.25), (0.55, 0.27)],
        ("efficientnet_lite0", "dp"): [(0.48, 0.15), (0.46, 0.17)],
    }
    for (b, r), seeds in values.items():
        for seed, (id_ap, ood) in enumerate(seeds):
            write_record(tmp_path / "results", make_record(
                backbone=b, recipe=r, seed=seed, id_ap=id_ap, ood={s: ood for s in
                ("demo_stylized", "demo_sketch", "demo_inked")}, rgn=0.1 + 0.1 * seed))


def test_rows_are_ranked_by_the_headline_with_mean_std_and_n(tmp_path: Path) -> None:
    _grid(tmp_path)
    report = build.build_report(_options(tmp_path, n_resamples=0))
    rows = _table_rows(report.markdown, "## Demo (offline, generated data)")
    order = [(r[1], r[2]) for r in rows]
    assert order == [
        ("ResNet-50 (IN-1k)", "FT"),  # OOD mean 0.36
        ("ResNet-18 (IN-1k)", "DP"),  # 0.28
        ("EfficientNet-Lite0 (IN-1k)", "FT"),  # 0.26
        ("ResNet-18 (IN-1k)", "FT"),  # 0.21
        ("EfficientNet-Lite0 (IN-1k)", "DP"),  # 0.16
        ("ResNet-50 (IN-1k)", "DP"),  # 0.11
    ]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    header = report.markdown.split("## Demo (offline, generated data)", 1)[1]
    header = next(ln for ln in header.splitlines() if ln.startswith("| #"))
    cols = [c.strip() for c in header.strip("|").split(" | ")]
    top = dict(zip(cols, rows[0], strict=True))
    assert top["n"] == "2"
    # ID AP of resnet50 × ft: seeds 0.60 and 0.62 → 61.0 ± 1.4 (sample std 0.01414)
    assert top["ID AP"] == "61.0 ± 1.4"
    assert top["OOD mean"] == "36.0 ± 1.4"
    assert top["gap"] == "25.0 ± 0.0"
    assert top["RGN"] == "0.150 ± 0.071"
    assert top["RGN (L2)"] == "0.015 ± 0.007"


def test_effective_robustness_matches_a_hand_computation(tmp_path: Path) -> None:
    _grid(tmp_path)
    fb = _family(tmp_path, "demo")
    # baseline = the ft rows' means (ID, OOD mean), fitted in logit space by least squares
    pts = {"resnet18": (0.51, 0.21), "resnet50": (0.61, 0.36), "efficientnet_lite0": (0.55, 0.26)}
    lg = lambda p: math.log(p / (1 - p))  # noqa: E731
    slope, intercept = np.polyfit([lg(x) for x, _ in pts.values()],
                                  [lg(y) for _, y in pts.values()], 1)
    assert fb.fit == pytest.approx((slope, intercept), rel=1e-9)

    def er(x: float, y: float) -> float:
        return y - 1 / (1 + math.exp(-(slope * lg(x) + intercept)))

    row = fb.rows[(fb.rows.backbone == "resnet18") & (fb.rows.recipe == "dp")].iloc[0]
    expected = np.mean([er(0.40, 0.30), er(0.40, 0.26)])
    assert row["er|mean"] == pytest.approx(expected, abs=1e-12)
    assert row["er|n"] == 2
    assert expected > 0.05  # DP on resnet18 sits well above the FT line
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    assert f"{100 * expected:+.1f} ± " in md
    assert "the line fitted through the 3 `ft` rows" in md


def test_er_needs_two_baseline_rows(tmp_path: Path) -> None:
    write_record(tmp_path / "results", make_record(recipe="ft"))
    write_record(tmp_path / "results", make_record(recipe="dp"))
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    assert "ER: not computed — the fit needs at least 2 `ft` rows" in md
    # another baseline recipe makes the dp rows the baseline (still one point)
    md = build.build_report(_options(tmp_path, n_resamples=0, baseline_recipe="dp")).markdown
    assert "at least 2 `dp` rows" in md


def test_no_records_still_renders(tmp_path: Path) -> None:
    report = build.build_report(_options(tmp_path))
    assert "**No runs yet.**" in report.markdown
    assert "## Metric definitions" in report.markdown
    assert report.leaderboard().empty
    output.write_outputs(report, _options(tmp_path))
    assert (tmp_path / "BENCHMARKS.md").is_file()
    assert (tmp_path / "results" / "leaderboard.csv").is_file()


def test_partial_grid_shows_dashes_and_still_renders(tmp_path: Path) -> None:
    res = tmp_path / "results"
    write_record(res, make_record(backbone="resnet18", recipe="ft", rgn=None))
    # no OOD splits evaluated, no corruption run, no RGN
    write_record(res, make_record(backbone="resnet50", recipe="ft", ood={}, corruption={},
                                  rgn=None))
    rec = make_record(backbone="resnet50", recipe="dp", rgn=None)
    rec["summary"] = {k: None for k in rec["summary"]}  # every summary part null
    write_record(res, rec)
    report = build.build_report(_options(tmp_path, n_resamples=0))
    rows = {(r[1], r[2]): r for r in _table_rows(report.markdown, "## Demo")}
    assert len(rows) == 3
    partial = rows[("ResNet-50 (IN-1k)", "FT")]
    assert partial[4] == "50.0"  # ID AP still there
    assert partial.count("—") >= 6  # OOD domains, OOD mean, gap, mPC, rPC, RGN
    assert all(c == "—" for c in rows[("ResNet-50 (IN-1k)", "DP")][4:])
    # rows without the headline (OOD mean) rank last, in label order
    assert [rows[k][0] for k in (("ResNet-18 (IN-1k)", "FT"), ("ResNet-50 (IN-1k)", "DP"),
                                 ("ResNet-50 (IN-1k)", "FT"))] == ["1", "2", "3"]
    output.write_outputs(report, _options(tmp_path, n_resamples=0))
    assert cli.main(["--results", str(res), "--out", str(tmp_path / "BENCHMARKS.md"),
                    "--bootstrap", "0", "--check"]) == 0


def test_mixed_code_versions_and_manifests_are_flagged_never_averaged(tmp_path: Path) -> None:
    res = tmp_path / "results"
    for seed, ap in enumerate((0.40, 0.42)):
        write_record(res, make_record(seed=seed, id_ap=ap, datasets={"demo_test": "aaa"}))
    write_record(res, make_record(seed=2, id_ap=0.90, code_version="0.2.0",
                                  datasets={"demo_test": "aaa"}))
    write_record(res, make_record(seed=3, id_ap=0.10, datasets={"demo_test": "bbb"}))
    write_record(res, make_record(recipe="dp", id_ap=0.3, datasets={"demo_test": "aaa"}))
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    rows = _table_rows(md, "## Demo")
    ft = {r[-1]: r for r in rows if r[2] == "FT"}
    assert len(ft) == 3  # one row per (code version, data manifest); none averaged together
    id_aps = sorted(r[4] for r in ft.values())
    assert id_aps == ["10.0", "41.0 ± 1.4", "90.0"]
    majority = next(k for k, r in ft.items() if r[4].startswith("41.0"))
    assert "0.1.0/r1" in majority and "data " in majority
    flagged = [r for r in rows if r[0].endswith("⚠")]
    assert {r[4] for r in flagged} == {"10.0", "90.0"}
    assert "This table mixes 2 code versions (0.1.0/r1, 0.2.0/r1) and different dataset " \
           "manifests for `demo_test`" in md
    assert "`demo_test`: `aaa` × 4, `bbb` × 1 ⚠" in md


def test_corrupt_record_is_named_and_the_report_renders(tmp_path: Path) -> None:
    res = tmp_path / "results"
    write_record(res, make_record())
    (res / "runs" / "cafebabe").mkdir(parents=True)
    (res / "runs" / "cafebabe" / "record.json").write_text('{"schema": 1, "finger')
    report = build.build_report(_options(tmp_path, n_resamples=0))
    assert "**1 record file skipped**" in report.markdown
    assert "| `results/runs/cafebabe/record.json` | malformed JSON (truncated?)" in \
        report.markdown
    assert len(_table_rows(report.markdown, "## Demo")) == 1
    assert report.skipped[0].path == "results/runs/cafebabe/record.json"


# ---- published rows ------------------------------------------------------------------------
def test_published_rows_with_source_and_deltas(tmp_path: Path) -> None:
    res = tmp_path / "results"
    ood = {"clipart_test": 0.12, "watercolor_test": 0.20, "comic_test": 0.08}
    pascal_ft = make_record(family="pascal", backbone="resnet50", weights="swsl_resnet50",
                            recipe="ft", id_ap=0.52, ood=ood, corruption={},
                            id_split="voc2007_test", rgn=1.2)
    pascal_ft["protocol"] = copy.deepcopy(SAITO_CARD)  # run as the study ran it: comparable
    write_record(res, pascal_ft)
    coco_ft = make_record(family="coco_c", backbone="resnet50", recipe="ft",
                          weights="torchvision_resnet50",
                          id_ap=0.35, ood={}, id_split="coco_val2017",
                          corruption_base="coco_val2017",
                          corruption={"fog": {"1": 0.2, "2": 0.16}})
    # the same protocol on another detector (mmdetection v1's is no engine here): no delta
    coco_ft["protocol"] = {**copy.deepcopy(MICHAELIS_CARD),
                           "detector": detector_fields(FRCNN_FPN, "faster_rcnn_fpn")}
    write_record(res, coco_ft)
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    pascal = _table_rows(md, "### Published reference rows (Pascal")
    ft = next(r for r in pascal if r[0].startswith("ResNet-50 (Instagram SWSL)") and r[1] == "ft")
    assert "*published*" in ft[0]
    # columns: ID AP, Clipart, Watercolor, Comic, OOD mean, gap (as the reproduced table)
    assert ft[2] == "50.4 / 52.0† (Δ +1.6)"  # Pascal ID (COCO protocol here: marked †)
    assert ft[5] == "7.5 / 8.0† (Δ +0.5)"  # Comic
    assert ft[6] == "12.8 (derived) / 13.3† (Δ +0.6)"  # 13.33 − 12.77
    assert ft[-1].startswith('Saito et al., "Mind the Backbone"')
    dp = next(r for r in pascal if r[0].startswith("ResNet-50 (Instagram SWSL)") and r[1] == "dp")
    assert dp[5] == "15.7" and dp[-3] == "none"  # no reproduced DP row: no delta
    assert dp[-2] == "—"  # … and no card to compare
    assert ft[-2] == "comparable: cards equal"
    coco = _table_rows(md, "### Published reference rows (COCO → COCO-C)")
    assert coco[0][2:5] == ["36.3 / 35.0", "18.2 / 18.0", "50.2 / 51.4"]
    assert ("detector.rpn pre-NMS top 2000/1000 per level, post-NMS top 1000/1000 per image "
            "(train/test), NMS 0.7, IoU 0.7/0.3≠mmdetection v1: 2000 proposals per image in "
            "training, NMS 0.7") in coco[0][-2]
    assert "Michaelis et al." in coco[0][-1]
    rgn = _table_rows(md, "## RGN per backbone")
    swsl = next(r for r in rgn if r[0] == "resnet50[swsl_resnet50]")
    assert swsl[1] == "`ft`" and swsl[2] == "1.200 (n=1)"
    assert swsl[5].startswith("1.340 (*published*: ResNet-50 (Instagram SWSL))")
    # measured at the pretrained backbone (FT), not at the DP checkpoint: no delta
    assert swsl[6] == "no comparable measurement"
    assert any(r[0].startswith("EfficientNet-B0 (") and r[0].endswith("— *published*")
               for r in rgn)


# ---- exports, determinism, --check ---------------------------------------------------------------
def test_exports_and_deterministic_render(tmp_path: Path) -> None:
    _grid(tmp_path)
    opts = _options(tmp_path, n_resamples=0)
    first = build.build_report(opts)
    second = build.build_report(opts)
    assert first.markdown == second.markdown and first.html == second.html
    output.write_outputs(first, opts)
    res = tmp_path / "results"
    board = pd.read_csv(res / "leaderboard.csv")
    assert len(board) == 12 * (1 + 3 + 2)  # runs × eval splits
    assert {"fingerprint", "split", "role", "AP", "AP50", "code_version", "git_commit",
            "dataset_fingerprint", "er", "variant"} <= set(board.columns)
    assert pd.read_parquet(res / "leaderboard.parquet").shape == board.shape
    html = (res / "leaderboard.html").read_text()
    # one self-contained page: the plots are inlined (it works offline, copied anywhere)
    assert '<table class="lb" id="demo-leaderboard" data-sticky="3">' in html
    import base64

    png = (res / "plots" / "demo_id_vs_ood.png").read_bytes()
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in html
    assert 'src="plots/' not in html and "http://" not in html and "https://" not in html
    plots = sorted(p.name for p in (res / "plots").iterdir())
    assert plots == ["demo_corruption_heatmap.png", "demo_gain_over_ft.png",
                     "demo_id_vs_ood.png", "rgn_vs_ood_change.png"]
    for name in plots:
        assert f"](results/plots/{name})" in first.markdown
    before = {p: p.read_bytes() for p in (res / "plots").iterdir()}
    output.write_outputs(second, opts)
    assert {p: p.read_bytes() for p in (res / "plots").iterdir()} == before  # byte-identical
    assert not re.search(r"20\d\d-\d\d-\d\d", first.markdown)  # no timestamps


def test_check_detects_stale_and_missing_files(tmp_path: Path, capsys: Any) -> None:
    _grid(tmp_path)
    res, out = tmp_path / "results", tmp_path / "BENCHMARKS.md"
    args = ["--results", str(res), "--out", str(out), "--bootstrap", "0"]
    assert cli.main([*args, "--check"]) == 1  # not generated yet
    assert "missing" in capsys.readouterr().err
    assert cli.main(args) == 0
    assert cli.main([*args, "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    # a new record makes the file stale
    write_record(res, make_record(backbone="resnet101", recipe="ft", id_ap=0.7))
    assert cli.main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert "stale" in err and "resnet101" in err
    assert cli.main(args) == 0 and cli.main([*args, "--check"]) == 0
    # a hand edit is caught too; plots are not part of the check
    out.write_text(out.read_text().replace("## Metric definitions", "## Definitions"))
    assert cli.main([*args, "--check"]) == 1
    assert cli.main(args) == 0
    for p in (res / "plots").iterdir():
        p.unlink()
    assert cli.main([*args, "--check"]) == 0
    # --check writes nothing
    (res / "leaderboard.csv").unlink()
    assert cli.main([*args, "--check"]) == 0 and not (res / "leaderboard.csv").exists()


# ---- bootstrap intervals from saved predictions --------------------------------------------------
def write_gt_splits(data: Path, rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, str]]:
    """Prepared ``demo_test`` / ``demo_sketch`` / ``demo_test-C.fog.3`` splits of generated
    ground truth under ``data`` (placeholder image files: the report reads no pixels);
    returns (ground truth by split, fingerprint by split)."""
    base = _split_gt(rng, 40)
    gts = {"demo_test": base, "demo_sketch": _split_gt(rng, 30, id0=500),
           "demo_test-C.fog.3": base}
    for name, gt in gts.items():
        for img in gt["images"]:
            path = data / name / "images" / img["file_name"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    fps = {n: write_split(n, gt, dataset="t", domain="t", root=data).fingerprint
           for n, gt in gts.items()}
    return gts, fps


def _split_gt(rng: np.random.Generator, n_img: int, id0: int = 1) -> dict[str, Any]:
    images = [{"id": id0 + i, "file_name": f"{i}.png", "width": 160, "height": 160}
              for i in range(n_img)]
    anns = []
    for img in images:
        for _ in range(int(rng.integers(1, 4))):
            xy = rng.uniform(0, 100, 2)
            wh = rng.uniform(15, 50, 2)
            anns.append({"id": len(anns) + 1, "image_id": img["id"],
                         "category_id": int(rng.integers(1, 3)),
                         "bbox": [float(xy[0]), float(xy[1]), float(wh[0]), float(wh[1])],
                         "area": float(wh[0] * wh[1]), "iscrowd": 0})
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def _detect(gt: dict[str, Any], rng: np.random.Generator, noise: float, miss: float
            ) -> list[dict[str, Any]]:
    preds = []
    for a in gt["annotations"]:
        if rng.random() < miss:
            continue
        box = np.asarray(a["bbox"]) + rng.normal(0, noise, 4)
        box[2:] = np.abs(box[2:]) + 1
        preds.append({"image_id": a["image_id"], "category_id": a["category_id"],
                      "bbox": [float(v) for v in box], "score": float(rng.uniform(0.5, 1))})
    for img in gt["images"]:
        box = [float(v) for v in rng.uniform(0, 100, 2)] + [20.0, 20.0]
        preds.append({"image_id": img["id"], "category_id": int(rng.integers(1, 3)),
                      "bbox": box, "score": float(rng.uniform(0, 0.6))})
    return preds


@pytest.fixture
def prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Prepared ID / OOD / corrupted splits and two backbones × {ft, dp} with saved
    predictions; records carry the real COCO metrics of those predictions."""
    from benchmark.evaluation.coco import coco_summary

    data, arts = tmp_path / "data", tmp_path / "artifacts"
    monkeypatch.setenv("BENCH_DATA", str(data))
    monkeypatch.setenv("BENCH_ARTIFACTS", str(arts))
    rng = np.random.default_rng(0)
    splits, fps = write_gt_splits(data, rng)
    quality = {"ft": (2.0, 0.1), "dp": (6.0, 0.3)}  # (box noise, miss rate)
    records = []
    for backbone in ("resnet18", "resnet50"):
        for recipe, (noise, miss) in quality.items():
            rec = make_record(backbone=backbone, recipe=recipe, ood={"demo_sketch": 0.0},
                              corruption={"fog": {"3": 0.0}}, datasets=fps)
            fp = rec["fingerprint"]
            summaries = {}
            for name, gt in splits.items():
                extra = 3.0 if "-C." in name else 0.0
                preds = _detect(gt, rng, noise + extra, miss)
                path = arts / "runs" / fp / "predictions" / f"{name}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(preds))
                summaries[name] = coco_summary(gt, preds)
            set_metrics(rec, summaries)
            write_record(tmp_path / "results", rec)
            records.append(rec)
    return {"records": records, "tmp": tmp_path, "artifacts": arts}


def test_bootstrap_intervals_and_paired_comparison_from_saved_predictions(
        prepared: dict[str, Any]) -> None:
    tmp = prepared["tmp"]
    opts = _options(tmp, n_resamples=200)
    report = build.build_report(opts)
    md = report.markdown
    rows = _table_rows(md, "### Uncertainty (Demo")
    assert len(rows) == 4
    by_label = {(r[1], r[2]): r for r in rows}
    rec = next(r for r in prepared["records"] if r["spec"]["backbone"]["name"] == "resnet18"
               and r["spec"]["recipe"]["name"] == "ft")
    cell = by_label[("ResNet-18 (IN-1k)", "FT")]
    m = re.match(r"([\d.]+) \[([\d.]+), ([\d.]+)\]", cell[3])
    assert m, cell
    est, low, high = map(float, m.groups())
    assert est == pytest.approx(round(100 * rec["metrics"]["demo_test"]["AP"], 1))
    assert low < est < high
    for c in cell[4:]:
        assert re.match(r"[\d.]+ \[[\d.]+, [\d.]+\]", c), c
    paired = _table_rows(md, "paired bootstrap, AP points")
    assert {(r[0], r[1], r[2]) for r in paired} == {("ResNet-18 (IN-1k)", "DP", "FT"),
                                                     ("ResNet-50 (IN-1k)", "DP", "FT")}
    header = next(ln for ln in md.splitlines() if ln.startswith("| Backbone | Recipe | vs |"))
    assert "| Δ OOD mean [95% CI] | p | Δ mPC [95% CI] | p | Δ ID AP [95% CI] | p |" in header
    for r in paired:
        assert r[3].startswith("-")  # dp (noisier boxes) is worse than ft on OOD …
        assert float(r[4].lstrip("<")) < 0.05  # … significantly
        assert r[5].startswith("-")  # … and under corruption
    # intervals are cached: without the predictions the same markdown renders (--check passes)
    output.write_outputs(report, opts)
    cache = json.loads((tmp / "results" / uncertainty.CACHE_FILE).read_text())
    assert len(cache["entries"]) == 4 * 4 + 2 * 3  # rows × 4 statistics, pairs × 3 Δs
    import shutil

    shutil.rmtree(prepared["artifacts"])
    again = build.build_report(opts)
    assert again.markdown == md
    # without cache and artifacts: omitted with a note, still renders
    (tmp / "results" / uncertainty.CACHE_FILE).unlink()
    bare = build.build_report(opts).markdown
    assert "Bootstrap intervals omitted where saved predictions" in bare
    assert "### Uncertainty (Demo" in bare


def test_bootstrap_refuses_predictions_for_a_changed_split(prepared: dict[str, Any]) -> None:
    from benchmark.data.split import load_split, write_split

    split = load_split("demo_test", check_images=False)
    coco = dict(split.coco)
    coco["annotations"] = coco["annotations"][:-1]  # the GT changed after the runs
    write_split("demo_test", coco, dataset="t", domain="t", root=split.root.parent)
    md = build.build_report(_options(prepared["tmp"], n_resamples=50)).markdown
    assert "changed since the run" in md


# ---- family layouts ---------------------------------------------------------------------------
@pytest.mark.parametrize("family, ood, expected", [
    ("pascal", ("clipart_test", "watercolor_test", "comic_test"),
     ["ID AP (COCO)", "Clipart AP (COCO)", "Watercolor AP (COCO)", "Comic AP (COCO)",
      "OOD mean (COCO)", "gap", "RGN"]),  # Pascal labels its protocol: two are in use
    ("cityscapes", ("bdd100k_val", "foggy_cityscapes_val"),
     ["ID AP", "Foggy AP", "BDD AP", "OOD mean", "gap", "RGN"]),
    ("coco_o", ("coco_o_tattoo", "coco_o_sketch", "coco_o_cartoon"),
     ["ID AP", "Sketch AP", "Cartoon AP", "Tattoo AP", "OOD mean", "gap", "RGN"]),
])
def test_family_columns_in_protocol_order(tmp_path: Path, family: str, ood: tuple[str, ...],
                                          expected: list[str]) -> None:
    write_record(tmp_path / "results", make_record(family=family, ood={s: 0.2 for s in ood},
                                                   corruption={}, id_split="id_split"))
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    header = next(ln for ln in md.splitlines() if ln.startswith("| # |"))
    cols = [c.strip() for c in header.strip("|").split(" | ")]
    assert cols[4:] == expected


def test_voc_metrics_next_to_a_coco_summary(tmp_path: Path) -> None:
    """Older records: COCO-protocol summary, VOC-protocol AP only in ``metrics``."""
    ood = {"clipart_test": 0.12, "watercolor_test": 0.20, "comic_test": 0.08}
    rec = make_record(family="pascal", backbone="tf_efficientnet_b2",
                      weights="tf_efficientnet_b2_ns", recipe="dp", id_ap=0.30, ood=ood,
                      corruption={}, id_split="voc2007_test")
    rec["metrics"]["voc2007_test"]["voc"] = {"AP": 0.41, "AP50": 0.7, "AP75": 0.4,
                                             "protocol": "voc07"}
    rec["metrics"]["comic_test"]["voc"] = {"AP": 0.13, "AP50": 0.3, "AP75": 0.1,
                                           "protocol": "voc"}
    rec["protocol"] = copy.deepcopy(SAITO_CARD)
    write_record(tmp_path / "results", rec)
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    header = next(ln for ln in md.splitlines() if ln.startswith("| # |"))
    assert ("| ID AP (COCO) | Clipart AP (COCO) | Watercolor AP (COCO) | Comic AP (COCO) | "
            "OOD mean (COCO) | gap | ID AP (VOC) | OOD mean (VOC) |") in header
    row = _table_rows(md, "## Pascal")[0]
    assert row[4] == "30.0" and row[10] == "41.0"
    assert row[11] == "—"  # VOC AP missing for two domains: no VOC OOD mean
    pub = _table_rows(md, "### Published reference rows (Pascal")
    row = next(r for r in pub if r[0].startswith("EfficientNet-B2") and r[1] == "dp")
    assert row[2] == "40.2 / 41.0 (Δ +0.8)"  # Pascal ID AP, VOC07 on both sides: no †
    assert row[5] == "12.6 / 13.0 (Δ +0.4)"  # Comic, VOC protocol on both sides
    assert "†" in row[3] and "†" in row[4]  # Clipart, Watercolor: only COCO-protocol AP


def _voc_summary_record(seed: int = 0, **kw: Any) -> dict[str, Any]:
    """As the pipeline writes Pascal records now: the summary in the VOC protocol, both
    protocols in ``metrics``."""
    coco = {"clipart_test": 0.10, "watercolor_test": 0.18, "comic_test": 0.06}
    voc = {"clipart_test": 0.16, "watercolor_test": 0.24, "comic_test": 0.12}
    rec = make_record(family="pascal", backbone="resnet50", weights="swsl_resnet50", recipe="ft",
                      id_ap=0.52, ood=voc, corruption={}, id_split="voc07_test", seed=seed, **kw)
    rec["summary"]["protocol"] = "voc"
    rec["metrics"]["voc07_test"] = {"AP": 0.45, "AP50": 0.7, "AP75": 0.4,
                                    "voc": {"AP": 0.52, "AP50": 0.8, "AP75": 0.5,
                                            "protocol": "voc07"}}
    for split in coco:
        rec["metrics"][split] = {"AP": coco[split], "AP50": 0.3,
                                 "voc": {"AP": voc[split], "protocol": "voc"}}
    return rec


def test_voc_summary_records_show_both_protocols_and_compare_like_for_like(
        tmp_path: Path) -> None:
    record = _voc_summary_record()
    record["protocol"] = copy.deepcopy(SAITO_CARD)
    write_record(tmp_path / "results", record)
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    header = next(ln for ln in md.splitlines() if ln.startswith("| # |"))
    assert ("| ID AP (VOC) | Clipart AP (VOC) | Watercolor AP (VOC) | Comic AP (VOC) | "
            "OOD mean (VOC) | gap | ID AP (COCO) | OOD mean (COCO) |") in header
    assert "ID AP (VOC): VOC-protocol AP@[.5:.95] (11-point on VOC2007 test" in md
    row = _table_rows(md, "## Pascal")[0]
    assert row[4] == "52.0"  # the summary (VOC)
    assert row[10:12] == ["45.0", "11.3"]  # COCO: 0.45; (0.10+0.18+0.06)/3
    pub = _table_rows(md, "### Published reference rows (Pascal")
    ft = next(r for r in pub if r[0].startswith("ResNet-50 (Instagram") and r[1] == "ft")
    assert ft[2] == "50.4 / 52.0 (Δ +1.6)" and ft[5] == "7.5 / 12.0 (Δ +4.5)"
    assert "†" not in "".join(ft)


def test_records_with_different_summary_protocols_are_not_averaged(tmp_path: Path) -> None:
    old = _voc_summary_record(seed=1)
    old["summary"]["protocol"] = None  # an older record: its summary is COCO-protocol
    old["summary"]["id_ap"] = 0.45
    write_record(tmp_path / "results", _voc_summary_record(seed=0))
    write_record(tmp_path / "results", old)
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    rows = _table_rows(md, "## Pascal")
    assert sorted(r[4] for r in rows) == ["45.0", "52.0"]
    assert {r[-1] for r in rows} == {"0.1.0/r1", "0.1.0/r1/voc"}
    assert "different protocols (coco, voc)" in md or "different protocols (voc, coco)" in md


def test_coco_c_table_and_per_corruption_severity_grid(tmp_path: Path) -> None:
    for b, scale in (("resnet50", 1.0), ("resnet18", 0.8)):
        corr = {c: {str(s): scale * (0.4 - 0.05 * s) for s in range(1, 6)}
                for c in ("fog", "gaussian_noise")}
        write_record(tmp_path / "results", make_record(
            family="coco_c", backbone=b, id_ap=0.4 * scale, ood={}, corruption=corr,
            id_split="coco_val2017", corruption_base="coco_val2017"))
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    header = next(ln for ln in md.splitlines() if ln.startswith("| # |"))
    assert [c.strip() for c in header.strip("|").split(" | ")][4:] == \
        ["P", "mPC", "rPC (%)", "ER", "RGN"]  # two ft rows: an (exact) ER line
    rows = _table_rows(md, "## COCO → COCO-C")
    assert [r[1] for r in rows] == ["ResNet-50 (IN-1k)", "ResNet-18 (IN-1k)"]  # by mPC
    assert rows[0][4:7] == ["40.0", "25.0", "62.5"]
    # one compact table: rows × corruptions, each the mean over the severities, then mPC
    grid = _table_rows(md, "### Per-corruption AP (")
    assert grid[0] == ["1", "ResNet-50 (IN-1k)", "FT", "25.0", "25.0", "25.0"]  # Fog, Gauss, mPC
    assert grid[1][:3] == ["2", "ResNet-18 (IN-1k)", "FT"] and grid[1][3] == "20.0"
    assert "![COCO → COCO-C: AP per corruption (mean over severities 1, 2, 3, 4, 5)]" in md


def test_configurations_sharing_labels_get_a_config_tag(tmp_path: Path) -> None:
    a = make_record()
    b = make_record(id_ap=0.6)
    b["spec"]["schedule"] = {"iterations": 600}
    b["fingerprint"] = "f" * 16
    write_record(tmp_path / "results", a)
    write_record(tmp_path / "results", b)
    rows = _table_rows(build.build_report(_options(tmp_path, n_resamples=0)).markdown, "## Demo")
    assert len(rows) == 2
    assert all(re.fullmatch(r"FT ‹cfg [0-9a-f]{6}›", r[2]) for r in rows)


def test_rgn_per_backbone_prefers_runs_measured_at_the_dp_checkpoint(tmp_path: Path) -> None:
    res = tmp_path / "results"
    for recipe, rgn in (("ft", 0.9), ("dp", 0.8), ("dp_ft", 1.30)):
        write_record(res, make_record(backbone="resnet50", weights="swsl_resnet50", recipe=recipe,
                                      rgn=rgn))
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    rows = {r[1]: r for r in _table_rows(md, "## RGN per backbone")
            if r[0] == "resnet50[swsl_resnet50]"}
    assert set(rows) == {"`ft`", "`dp`", "`dp_ft`"}
    assert rows["`dp_ft`"][6] == "-0.040"  # 1.30 − 1.34, the dp_ft runs stand for the backbone
    assert rows["`ft`"][5] == rows["`dp`"][5] == "—"
    assert "no comparable measurement" not in rows["`dp_ft`"]


def test_module_entry_point(tmp_path: Path) -> None:
    import subprocess
    import sys

    write_record(tmp_path / "results", make_record())
    cmd = [sys.executable, "-m", "benchmark.report", "--results", str(tmp_path / "results"),
           "--out", str(tmp_path / "B.md"), "--bootstrap", "0"]
    env = {**__import__("os").environ, "BENCH_REPORT_SERIAL": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "B.md").read_text().startswith("# Benchmarks")
    check = subprocess.run([*cmd, "--check"], capture_output=True, text=True, env=env,
                           check=False)
    assert check.returncode == 0 and "up to date" in check.stdout
