"""Corruptions: reference-identical, seeded per image, RNG-neutral; corrupted splits are
deterministic, resumable and idempotent; the CLI reports bad input in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imagecorruptions
import numpy as np
import pytest

from benchmark.data import pixel_sha256, read_rgb
from benchmark.data.corrupt import (
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    HELDOUT_CORRUPTIONS,
    build_corrupted_split,
    build_corrupted_splits,
    corrupt_image,
    corruption_names,
    corruption_seed,
    parse_severities,
    to_uint8_image,
)
from benchmark.data.demo import build_demo
from benchmark.data.split import PreparedSplit, load_split
from benchmark.errors import ConfigError, DataError
from benchmark.prepare import main
from benchmark.store import sha256_file, sha256_lines

#: the 15 benchmark corruptions in the order of Hendrycks & Dietterich, "Benchmarking Neural
#: Network Robustness to Common Corruptions and Perturbations" (ICLR 2019), Figure 1
PUBLISHED_ORDER = (
    "gaussian_noise shot_noise impulse_noise defocus_blur glass_blur motion_blur zoom_blur snow "
    "frost fog brightness contrast elastic_transform pixelate jpeg_compression"
).split()


def _image(h: int = 40, w: int = 56, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_corruption_lists() -> None:
    assert list(BENCHMARK_CORRUPTIONS) == PUBLISHED_ORDER
    assert list(BENCHMARK_CORRUPTIONS) == imagecorruptions.get_corruption_names("common")
    assert list(HELDOUT_CORRUPTIONS) == ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
    assert list(HELDOUT_CORRUPTIONS) == imagecorruptions.get_corruption_names("validation")


def test_corruption_seed_is_stable_and_keyed_on_everything() -> None:
    s = corruption_seed(0, 17, "fog", 3)
    assert s == corruption_seed(0, 17, "fog", 3)
    assert 0 <= s < 2**32
    others = {corruption_seed(1, 17, "fog", 3), corruption_seed(0, 18, "fog", 3),
              corruption_seed(0, 17, "frost", 3), corruption_seed(0, 17, "fog", 4)}  # fmt: skip
    assert s not in others and len(others) == 4


@pytest.mark.parametrize("corruption", ALL_CORRUPTIONS)
def test_every_corruption_matches_the_reference(corruption: str) -> None:
    """uint8, same (odd, non-square) shape, and equal to imagecorruptions.corrupt seeded alike."""
    image = _image()
    seed = corruption_seed(0, 5, corruption, 3)
    out = corrupt_image(image, corruption, 3, seed=seed)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.random.seed(seed)
    kwargs = {"seed": seed} if corruption in ("impulse_noise", "glass_blur") else {}
    reference = imagecorruptions.corrupt(image, 3, corruption, **kwargs)
    np.testing.assert_array_equal(out, reference)
    np.testing.assert_array_equal(out, corrupt_image(image, corruption, 3, seed=seed))


@pytest.mark.parametrize("corruption", ["gaussian_noise", "impulse_noise", "glass_blur", "frost"])
def test_seed_changes_random_corruptions(corruption: str) -> None:
    image = _image(64, 64)
    a = corrupt_image(image, corruption, 2, seed=1)
    assert not np.array_equal(a, corrupt_image(image, corruption, 2, seed=2))


def test_global_rng_state_is_restored() -> None:
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    for corruption in ("gaussian_noise", "frost", "snow"):
        corrupt_image(_image(), corruption, 1, seed=9)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown corruption 'blurry'"):
        corrupt_image(_image(), "blurry", 1, seed=0)
    with pytest.raises(ConfigError, match="severity=6"):
        corrupt_image(_image(), "fog", 6, seed=0)
    with pytest.raises(DataError, match="at least 32x32"):
        corrupt_image(_image(31, 64), "fog", 1, seed=0)
    with pytest.raises(DataError, match="expected"):
        corrupt_image(_image()[..., 0], "fog", 1, seed=0)


def test_to_uint8_image_clips_truncates_and_fixes_shape() -> None:
    out = to_uint8_image(np.array([[254.7, 300.0], [-3.0, 0.99]]), 2, 2)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[..., 0], [[254, 255], [0, 0]])
    np.testing.assert_array_equal(out[..., 2], out[..., 0])  # grey → 3 channels
    big = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    np.testing.assert_array_equal(to_uint8_image(big, 3, 2), big[:3, :2])  # crop top-left
    small = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    padded = to_uint8_image(small, 3, 4)  # pad bottom/right with edge values
    assert padded.shape == (3, 4, 3)
    np.testing.assert_array_equal(padded[:2, :2], small)
    np.testing.assert_array_equal(padded[2, 3], small[1, 1])
    np.testing.assert_array_equal(padded[0, 3], small[0, 1])


def test_corruption_names() -> None:
    assert corruption_names("all") == list(ALL_CORRUPTIONS)
    assert corruption_names("benchmark") == list(BENCHMARK_CORRUPTIONS)
    assert corruption_names("heldout") == list(HELDOUT_CORRUPTIONS)
    assert corruption_names("none") == []
    assert corruption_names("fog, gaussian_noise,fog") == ["fog", "gaussian_noise"]
    with pytest.raises(ConfigError) as info:
        corruption_names("fog,fgo")
    assert "'fgo'" in str(info.value) and "gaussian_noise" in str(info.value)


def test_parse_severities() -> None:
    assert parse_severities("1-5") == [1, 2, 3, 4, 5]
    assert parse_severities("3") == [3]
    assert parse_severities("1,3,5") == [1, 3, 5]
    assert parse_severities("4-5,1") == [4, 5, 1]
    for bad in ("0", "1-6", "x", "", "2-"):
        with pytest.raises(ConfigError, match="severities="):
            parse_severities(bad)


# ---------------------------------------------------------------------------- corrupted splits


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> PreparedSplit:
    root = tmp_path_factory.mktemp("src")
    return build_demo(root, seed=3, n_train=1, n_test=5, progress=False)[1]


def _files(split: PreparedSplit) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(split.root.rglob("*")) if p.is_file()}


def test_corrupted_split_is_deterministic_and_described(source: PreparedSplit,
                                                        tmp_path: Path) -> None:  # fmt: skip
    a = build_corrupted_split(source, "glass_blur", 2, root=tmp_path / "a", progress=False)
    b = build_corrupted_split(source, "glass_blur", 2, root=tmp_path / "b", workers=2,
                              progress=False)  # fmt: skip
    assert a.name == "demo_test-C.glass_blur.2"
    assert _files(a) == _files(b)  # byte-identical, whatever the number of workers
    m = a.manifest
    assert (m["corruption"], m["severity"], m["source_split"], m["global_seed"]) == (
        "glass_blur", 2, "demo_test", 0)  # fmt: skip
    assert m["source_fingerprint"] == source.fingerprint
    assert m["num_images"] == 5 and m["num_boxes"] == source.manifest["num_boxes"]
    hashes = {f: pixel_sha256(read_rgb(a.image_path(f))) for f in m["image_sha256"]}
    assert hashes == m["image_sha256"]
    assert m["images_sha256"] == sha256_lines(sorted(hashes.values()))
    assert load_split(a.name, tmp_path / "a").coco["annotations"] == source.coco["annotations"]
    c = build_corrupted_split(source, "glass_blur", 2, root=tmp_path / "c", global_seed=1,
                              progress=False)  # fmt: skip
    assert c.manifest["images_sha256"] != m["images_sha256"]


def test_each_image_is_the_seeded_corruption_of_its_source(source: PreparedSplit,
                                                           tmp_path: Path) -> None:  # fmt: skip
    split = build_corrupted_split(source, "shot_noise", 4, root=tmp_path, global_seed=7,
                                  progress=False)  # fmt: skip
    for img in source.coco["images"]:
        seed = corruption_seed(7, img["id"], "shot_noise", 4)
        expected = corrupt_image(read_rgb(source.image_path(img["file_name"])), "shot_noise", 4,
                                 seed=seed)  # fmt: skip
        np.testing.assert_array_equal(read_rgb(split.image_path(img["file_name"])), expected)


def test_resume_after_interruption(source: PreparedSplit, tmp_path: Path) -> None:
    split = build_corrupted_split(source, "gaussian_noise", 1, root=tmp_path, progress=False)
    before = _files(split)
    images = split.root / "images"
    # Simulate a run killed mid-way: no manifest yet, one output missing, a stray temp file.
    (split.root / "manifest.json").unlink()
    (split.root / "build.json").write_text(json.dumps({
        k: split.manifest[k] for k in ("corruption", "severity", "source_split",
                                       "source_fingerprint", "global_seed", "corruption_package",
                                       "corruption_code")
    }))  # fmt: skip
    (images / "000002.png").unlink()
    (images / ".000003.png.abc123.tmp").write_bytes(b"\x89PNG truncated")
    (images / "000004.png").write_bytes(b"\x89PNG damaged by a power loss")
    kept = (images / "000001.png").stat().st_mtime_ns
    again = build_corrupted_split(source, "gaussian_noise", 1, root=tmp_path, progress=False)
    assert _files(again) == before
    assert (images / "000001.png").stat().st_mtime_ns == kept  # intact outputs are reused
    assert not list(images.glob(".*.tmp")) and not (split.root / "build.json").exists()


def test_complete_split_is_skipped_and_repaired(source: PreparedSplit, tmp_path: Path) -> None:
    split = build_corrupted_split(source, "contrast", 5, root=tmp_path, progress=False)
    manifest = split.root / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    build_corrupted_split(source, "contrast", 5, root=tmp_path, progress=False)
    assert manifest.stat().st_mtime_ns == stamp  # complete: nothing rewritten
    before = _files(split)
    (split.root / "images" / "000005.png").unlink()
    build_corrupted_split(source, "contrast", 5, root=tmp_path, progress=False)
    assert _files(split) == before


def test_other_params_replace_old_outputs(source: PreparedSplit, tmp_path: Path) -> None:
    a = build_corrupted_split(source, "impulse_noise", 3, root=tmp_path, progress=False)
    old = sha256_file(a.image_path("000001.png"))
    b = build_corrupted_split(source, "impulse_noise", 3, root=tmp_path, global_seed=5,
                              progress=False)  # fmt: skip
    assert b.manifest["global_seed"] == 5
    assert sha256_file(b.image_path("000001.png")) != old
    fresh = build_corrupted_split(source, "impulse_noise", 3, root=tmp_path / "x", global_seed=5,
                                  progress=False)  # fmt: skip
    assert fresh.manifest["image_sha256"] == b.manifest["image_sha256"]


def test_build_many_shares_one_pool(source: PreparedSplit, tmp_path: Path) -> None:
    splits = build_corrupted_splits(source, ["fog", "pixelate"], [1, 5], root=tmp_path, workers=2,
                                    progress=False)  # fmt: skip
    assert [s.name for s in splits] == [f"demo_test-C.{c}.{s}" for c in ("fog", "pixelate")
                                        for s in (1, 5)]  # fmt: skip
    assert len({s.manifest["images_sha256"] for s in splits}) == 4


# ---------------------------------------------------------------------------- CLI


def test_cli_corrupt_builds_splits(source: PreparedSplit, capsys: pytest.CaptureFixture) -> None:
    root = source.root.parent
    rc = main(["corrupt", "demo_test", "--data-root", str(root), "--corruptions", "brightness",
               "--severities", "1,2", "--workers", "1", "--quiet"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "demo_test-C.brightness.1: 5 images" in out and "demo_test-C.brightness.2" in out
    assert load_split("demo_test-C.brightness.2", root).manifest["severity"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--corruptions", "gaussian_noize"], "unknown corruption 'gaussian_noize'"),
     (["--severities", "7"], "severity 7 is not in 1..5"),
     (["--workers", "0"], "--workers=0")],
)  # fmt: skip
def test_cli_errors_are_one_line(source: PreparedSplit, capsys: pytest.CaptureFixture,
                                 args: list[str], message: str) -> None:  # fmt: skip
    rc = main(["corrupt", "demo_test", "--data-root", str(source.root.parent), "--quiet", *args])
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warn")]
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_cli_missing_split_exits_2_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.prepare", "corrupt", "nosuch_split", "--data-root",
         str(tmp_path), "--corruptions", "fog"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "nosuch_split" in last
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------- channel order (BGR)
@pytest.mark.parametrize("corruption", ["frost", "snow", "jpeg_compression"])
def test_bgr_order_corrupts_the_bgr_array_as_mmdetection_does(corruption: str) -> None:
    """mmdetection's robustness pipeline corrupts the BGR array ``LoadImageFromFile`` returns:
    in RGB terms, flip → imagecorruptions.corrupt → flip. Frost (its BGR texture), snow
    (greyscale) and JPEG (chroma) depend on the order, so the two orders differ."""
    rgb = np.ascontiguousarray(
        np.random.default_rng(3).integers(0, 256, (64, 80, 3), dtype=np.uint8))
    seed = corruption_seed(0, 5, corruption, 3)
    out = corrupt_image(rgb, corruption, 3, seed=seed, channel_order="bgr")
    np.random.seed(seed)
    bgr_reference = imagecorruptions.corrupt(np.ascontiguousarray(rgb[..., ::-1]), 3, corruption)
    np.testing.assert_array_equal(out, bgr_reference[..., ::-1])
    assert not np.array_equal(out, corrupt_image(rgb, corruption, 3, seed=seed))


def test_bgr_splits_are_named_built_and_made_on_the_fly_alike(source: PreparedSplit,
                                                              tmp_path: Path) -> None:
    from benchmark.data.loader import DetectionDataset
    from benchmark.data.split import resolve_split
    from benchmark.spec import corrupted_split_name, parse_corrupted_split_name

    built = build_corrupted_split(source, "frost", 2, root=tmp_path / "built", progress=False,
                                  channel_order="bgr")
    assert built.name == corrupted_split_name("demo_test", "frost", 2, "bgr") \
        == "demo_test-Cbgr.frost.2"
    assert parse_corrupted_split_name(built.name) == ("demo_test", "frost", 2)
    assert built.manifest["channel_order"] == "bgr"
    rgb = build_corrupted_split(source, "frost", 2, root=tmp_path / "built", progress=False)
    assert rgb.name == "demo_test-C.frost.2" and "channel_order" not in rgb.manifest
    assert built.fingerprint != rgb.fingerprint
    # not materialised under another root: corrupted on the fly, to the same pixels
    fly = resolve_split(built.name, source.root.parent)
    assert fly.corruption == ("frost", 2, "bgr")
    assert fly.fingerprint != resolve_split(rgb.name, source.root.parent).fingerprint
    on_the_fly = DetectionDataset(fly.split, corruption=fly.corruption)
    for i, img in enumerate(source.coco["images"]):
        np.testing.assert_array_equal(on_the_fly.load_array(i),
                                      read_rgb(built.image_path(img["file_name"].replace(
                                          ".jpg", ".png"))))


def test_channel_order_in_the_spec() -> None:
    from benchmark.spec import CorruptionSpec

    rgb = CorruptionSpec("voc07_test", ("frost",), (3,))
    with pytest.raises(ConfigError, match="channel_order='rgbx'"):
        CorruptionSpec("voc07_test", ("frost",), (3,), "rgbx")
    bgr = CorruptionSpec("voc07_test", ("frost",), (3,), "bgr")
    assert rgb.channel_order == "rgb" and bgr.channel_order == "bgr"
