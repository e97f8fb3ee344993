"""Generated demo data and corrupted images are the same bytes whatever SIMD extensions the CPU
has (:mod:`benchmark.data.isa`).

A few demo scenes (photos, the three stylised domains) and the corruptions whose code paths
depend on the instruction set are regenerated in subprocesses, each with OpenCV's, IPP's,
numpy's, torch's, OpenBLAS's and numba's run-time dispatch capped at another level (AVX-512 is
only switched off: on a CPU without it that level equals the native one). Unpinned, frost (IPP's
cubic resize), motion_blur (numpy's AVX-512 ``exp``), defocus_blur (OpenCV's SSE4.1+ filters)
and demo_stylized differ between these levels.

Run as ``python -m tests.test_isa_independence OUT.json`` it writes the hashes of this
process's CPU level (the test's subprocesses do that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: ISA-dependent unpinned: motion_blur, snow (exp), frost (IPP), defocus_blur (OpenCV dispatch);
#: gaussian_blur, spatter, elastic_transform (scipy's Gaussian taps use exp). glass_blur's taps
#: are gaussian_blur's, and compiling its numba kernel would cost 6 s per subprocess.
CORRUPTIONS = ("frost", "motion_blur", "snow", "defocus_blur", "gaussian_blur", "spatter",
               "elastic_transform")  # fmt: skip
_UNOPTIMIZED = "ISA_TEST_CV2_UNOPTIMIZED"  # the child calls cv2.setUseOptimized(False) first

_CV_AVX512 = ["AVX512F", "AVX512-COMMON", "AVX512-SKX", "AVX512-CLX", "AVX512-CNL",
              "AVX512-ICL", "AVX512-KNL", "AVX512-KNM"]  # fmt: skip
_CV_ALL = [*_CV_AVX512, "AVX_VNNI", "AVX2", "FMA3", "FP16", "AVX", "POPCNT", "SSE4.2", "SSE4.1",
           "SSSE3"]  # fmt: skip


def _numpy_targets() -> list[str]:
    """numpy's dispatch targets in this build (names differ between numpy versions)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__  # type: ignore[no-redef]
    return list(__cpu_dispatch__)


def _levels() -> dict[str, dict[str, str]]:
    targets = _numpy_targets()
    avx512 = [t for t in targets if t.startswith(("AVX512", "X86_V4"))]
    return {
        "native": {},
        "avx2": {
            "OPENCV_CPU_DISABLE": ",".join(_CV_AVX512), "OPENCV_IPP": "avx2",
            "NPY_DISABLE_CPU_FEATURES": " ".join(avx512), "ATEN_CPU_CAPABILITY": "avx2",
            "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
            "NUMBA_CPU_NAME": "haswell",
        },
        "baseline": {
            "OPENCV_CPU_DISABLE": ",".join(_CV_ALL), "OPENCV_IPP": "sse42",
            "NPY_DISABLE_CPU_FEATURES": " ".join(targets), "ATEN_CPU_CAPABILITY": "default",
            "ONEDNN_MAX_CPU_ISA": "SSE41", "OPENBLAS_CORETYPE": "Nehalem",
            "NUMBA_CPU_NAME": "nehalem",
        },
        "unoptimized": {_UNOPTIMIZED: "1", "OPENCV_IPP": "disabled"},
    }  # fmt: skip


def generate(root: Path) -> dict[str, str]:
    """Pixel hashes of a small demo build, its corrupted copies and a few flat images."""
    if os.environ.get(_UNOPTIMIZED):
        import cv2

        cv2.setUseOptimized(False)
    from benchmark.data import pixel_sha256
    from benchmark.data.corrupt import build_corrupted_splits, corrupt_image
    from benchmark.data.demo import CORRUPT_BASE, SPLITS, build_demo, cutouts

    splits = build_demo(root, n_train=2, n_test=4, n_corrupt=4, size=96, progress=False)
    base = splits[SPLITS.index(CORRUPT_BASE)]
    splits += build_corrupted_splits(base, CORRUPTIONS, [3], root=root, progress=False)
    hashes = {f"{s.name}/{f}": h for s in splits for f, h in s.manifest["image_sha256"].items()}
    hashes.update({f"{s.name}/annotations": s.manifest["annotation_sha256"] for s in splits})
    for cut in cutouts():
        hashes[f"cutout/{cut.name}"] = pixel_sha256(np.dstack([cut.rgb, cut.mask[..., None]]))
    for level in (5, 115, 230):  # flat regions: truncation to uint8 sees every last bit
        flat = np.full((48, 48, 3), level, np.uint8)
        for name in CORRUPTIONS:
            hashes[f"flat{level}/{name}"] = pixel_sha256(corrupt_image(flat, name, 3, seed=level))
    return hashes


def _run(level: str, env: dict[str, str], tmp: Path) -> dict[str, str]:
    out = tmp / f"{level}.json"
    full = {**os.environ, **env, "PYTHONPATH": str(REPO), "OPENCV_LOG_LEVEL": "ERROR"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.test_isa_independence", str(out)],
        cwd=REPO, env=full, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"{level}: {proc.stderr[-3000:]}"
    return json.loads(out.read_text())


def test_pixels_do_not_depend_on_the_instruction_set(tmp_path: Path) -> None:
    levels = _levels()
    with ThreadPoolExecutor(2) as pool:
        futures = {level: pool.submit(_run, level, env, tmp_path) for level, env in levels.items()}
        results = {level: future.result() for level, future in futures.items()}
    native = results["native"]
    assert len(native) > 80 and any(k.startswith("demo_stylized/") for k in native)
    differ = {}
    for level, hashes in results.items():
        assert hashes.keys() == native.keys()
        if keys := sorted(k for k in native if hashes[k] != native[k]):
            differ[level] = f"{len(keys)} differ: {', '.join(keys[:8])}"
    assert not differ, f"images that differ from the native level's: {differ}"


def test_pinned_in_every_thread() -> None:
    """OpenCV's IPP switch is per thread, and a new thread starts with IPP on: the pin must
    hold in whichever thread corrupts (IPP's cubic resize gives frost other pixels)."""
    from benchmark.data.corrupt import corrupt_image

    flat = np.full((48, 48, 3), 115, np.uint8)
    here = [corrupt_image(flat, "frost", 3, seed=seed) for seed in range(4)]
    with ThreadPoolExecutor(1) as pool:  # one thread: numpy's global RNG is not thread-safe
        there = list(pool.map(lambda seed: corrupt_image(flat, "frost", 3, seed=seed), range(4)))
    for a, b in zip(here, there, strict=True):
        np.testing.assert_array_equal(a, b)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = generate(Path(tmp))
    Path(sys.argv[1]).write_text(json.dumps(result, indent=0, sort_keys=True))
