"""Reproducible image corruptions (COCO-C style) and corrupted copies of prepared splits.

The reference implementation is the ``imagecorruptions`` package (pinned fork
``imagecorruptions-imaug``). Its corruptions draw from numpy's global RNG, and two of them
(impulse_noise, glass_blur) from their own generators unless given a ``seed``; without a seed
per image no two runs produce the same -C set. Here every (global seed, image id, corruption,
severity) gets its own seed (:func:`corruption_seed`), so a corrupted split is a pure function
of its source split, and the loader can corrupt on the fly to exactly the materialised pixels.

Nor do the pixels depend on the CPU's SIMD extensions (:mod:`benchmark.data.isa`): OpenCV is
kept on its baseline code, and the library's Gaussian taps (motion blur, ``skimage`` Gaussian)
take their exponentials from software instead of numpy's AVX-512 ``exp``.

The library (with ``skimage``, numba, scipy and :mod:`benchmark.data.isa`) is imported when
an image is first corrupted or a corruption checked against it, not with this module: naming
and parsing corruptions (:func:`corruption_names`, :func:`parse_severities`; grid validation)
stays cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache, partial
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from benchmark.data import IMAGE_HASH, pixel_sha256, read_rgb, write_png
from benchmark.data.split import (
    CORRUPTION_CODE,
    MANIFEST,
    PreparedSplit,
    load_if_complete,
    split_dir,
    write_split,
)
from benchmark.errors import BenchmarkError, ConfigError, DataError
from benchmark.spec import corrupted_split_name
from benchmark.store import atomic_write_json, remove_stray_temp_files, sha256_lines

BENCHMARK_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
HELDOUT_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS: tuple[str, ...] = BENCHMARK_CORRUPTIONS + HELDOUT_CORRUPTIONS
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "all": ALL_CORRUPTIONS,
    "benchmark": BENCHMARK_CORRUPTIONS,
    "heldout": HELDOUT_CORRUPTIONS,
    "none": (),
}

# Corruptions that ignore numpy's global RNG and take an explicit seed instead.
_SEED_ARGUMENT = frozenset({"impulse_noise", "glass_blur"})
_BUILD_STATE = "build.json"  # params of an unfinished build; removed when the manifest is written
_PATCH_LOCK = threading.Lock()


def _use_isa_independent_taps() -> None:
    """Point the library's two Gaussian-tap helpers at :mod:`benchmark.data.isa`'s versions.

    Its functions look ``gauss_function`` and ``gaussian`` up in their module at call time, so
    every corruption that uses them (motion_blur, snow; gaussian_blur, glass_blur, spatter,
    elastic_transform) keeps the library's code and differs only in the taps' last bits.
    """
    import skimage.filters
    from imagecorruptions import corruptions as _library

    from benchmark.data import isa

    with _PATCH_LOCK:  # a thread must not corrupt with one helper replaced and not the other
        if _library.gauss_function is isa.gauss_function:
            return
        if (_library.gaussian is not skimage.filters.gaussian
                or not callable(_library.gauss_function)):
            raise ImportError(
                f"{_package_version()}: its Gaussian helpers are not those this module "
                "replaces; check benchmark.data.isa against the new version"
            )
        _library.gauss_function = isa.gauss_function
        _library.gaussian = isa.gaussian


@cache
def _corruptions() -> dict[str, Callable[..., Any]]:
    """The library's corruptions by name, its Gaussian taps made ISA-independent first
    (:func:`_use_isa_independent_taps`); imported and patched once per process, not per
    image."""
    from imagecorruptions import corruption_dict

    _use_isa_independent_taps()
    return corruption_dict


def _package_version() -> str:
    try:
        return f"imagecorruptions-imaug=={metadata.version('imagecorruptions-imaug')}"
    except metadata.PackageNotFoundError:
        return "imagecorruptions (unknown version)"


# ---------------------------------------------------------------------------- names and seeds


def check_corruption(corruption: str, severity: int | None = None) -> None:
    if corruption not in ALL_CORRUPTIONS or corruption not in _corruptions():
        raise ConfigError(
            f"unknown corruption {corruption!r} (valid: {', '.join(ALL_CORRUPTIONS)})"
        )
    if severity is not None and severity not in SEVERITIES:
        raise ConfigError(f"severity={severity!r}: must be an integer in 1..5")


def corruption_names(spec: str) -> list[str]:
    """``"all"`` | ``"benchmark"`` | ``"heldout"`` | ``"none"`` | a comma list of names/groups."""
    names: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item in CORRUPTION_GROUPS:
            group = CORRUPTION_GROUPS[item]
        elif item in ALL_CORRUPTIONS:
            group = (item,)
        else:
            valid = ", ".join([*CORRUPTION_GROUPS, *ALL_CORRUPTIONS])
            raise ConfigError(f"unknown corruption {item!r} (valid: {valid})")
        names += [n for n in group if n not in names]
    return names


def parse_severities(spec: str) -> list[int]:
    """``"1-5"`` → [1, 2, 3, 4, 5]; ``"3"`` → [3]; ``"1,3,5"`` → [1, 3, 5]."""
    out: list[int] = []
    for item in (s.strip() for s in str(spec).split(",")):
        lo, sep, hi = item.partition("-")
        try:
            values = range(int(lo), int(hi) + 1) if sep else [int(lo)]
        except ValueError:
            raise ConfigError(f"severities={spec!r}: expected e.g. 1-5, 3 or 1,3,5") from None
        for v in values:
            if v not in SEVERITIES:
                raise ConfigError(f"severities={spec!r}: severity {v} is not in 1..5")
            if v not in out:
                out.append(v)
    if not out:
        raise ConfigError(f"severities={spec!r}: no severity given")
    return out


def corruption_seed(global_seed: int, image_id: int, corruption: str, severity: int) -> int:
    """A 32-bit seed (what ``np.random.seed`` and numba accept) from sha256 of the four keys."""
    key = f"imagecorruptions/{global_seed}/{image_id}/{corruption}/{severity}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big")


# ---------------------------------------------------------------------------- one image


def to_uint8_image(out: Any, height: int, width: int) -> np.ndarray:
    """Coerce a corruption's output to (height, width, 3) uint8.

    Floats are clipped to [0, 255] and truncated, as the reference's ``np.uint8(...)`` cast does
    (so results equal ``imagecorruptions.corrupt``'s); grey outputs are repeated to 3 channels;
    a larger output is cropped and a smaller one edge-padded at the bottom/right, the way the
    library itself crops its zoomed layers (``[:h, :w]``).
    """
    arr = np.asarray(out)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[:height, :width, :3]
    if arr.shape[:2] != (height, width):
        pad = ((0, height - arr.shape[0]), (0, width - arr.shape[1]), (0, 0))
        arr = np.pad(arr, pad, mode="edge")
    return np.ascontiguousarray(arr)


def corrupt_image(
    image: np.ndarray, corruption: str, severity: int, *, seed: int, channel_order: str = "rgb"
) -> np.ndarray:
    """Corrupt an (H, W, 3) uint8 RGB image; returns a new uint8 RGB array of the same shape.

    Seeds numpy's global RNG (and the explicit ``seed`` argument where a corruption has one)
    and restores the caller's global RNG state afterwards. ``channel_order="bgr"`` applies the
    corruption to the BGR array, as mmdetection's robustness pipeline does (it corrupts what
    ``LoadImageFromFile`` returns; frost's texture, snow's greyscale and JPEG depend on it),
    and converts the result back to RGB.
    """
    if channel_order == "bgr":
        bgr = np.ascontiguousarray(image[..., ::-1])
        return np.ascontiguousarray(corrupt_image(bgr, corruption, severity, seed=seed)[..., ::-1])
    check_corruption(corruption, severity)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"image dtype={image.dtype} shape={image.shape}: expected (H, W, 3) uint8")
    height, width = image.shape[:2]
    if height < 32 or width < 32:
        raise DataError(f"image shape={image.shape}: imagecorruptions needs at least 32x32")
    from benchmark.data import isa

    kwargs = {"seed": seed} if corruption in _SEED_ARGUMENT else {}
    isa.pin_opencv()
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        out = _corruptions()[corruption](Image.fromarray(image), severity, **kwargs)
    finally:
        np.random.set_state(state)
    return to_uint8_image(out, height, width)


# ---------------------------------------------------------------------------- corrupted splits

Job = tuple[str, str, str, int]  # output file_name, source path, output path, seed


def _process(corruption: str, severity: int, channel_order: str, job: Job) -> tuple[str, str]:
    """Corrupt one file, or hash it if a previous run already wrote it intact."""
    file_name, src, dst, seed = job
    dst_path = Path(dst)
    if dst_path.is_file():
        try:
            return file_name, pixel_sha256(read_rgb(dst_path))
        except (OSError, ValueError, SyntaxError):
            pass  # damaged (e.g. by a power loss): regenerate
    try:
        out = corrupt_image(read_rgb(src), corruption, severity, seed=seed,
                            channel_order=channel_order)
    except (BenchmarkError, OSError, ValueError) as e:
        raise DataError(f"{src}: {corruption} severity {severity} failed: {e}") from None
    write_png(dst_path, out)
    return file_name, pixel_sha256(out)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one core per worker; more threads only contend


Runner = Callable[[Callable[[Job], tuple[str, str]], Sequence[Job]], Iterator[tuple[str, str]]]


@contextlib.contextmanager
def _runner(workers: int) -> Iterator[Runner]:
    if workers <= 1:
        yield lambda fn, jobs: map(fn, jobs)
        return
    # Not "fork": forking a parent whose OpenCV / OpenMP thread pools have run deadlocks the
    # children. A fork server starts clean, imports this module once, then forks cheaply.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__, "imagecorruptions"])
    else:
        ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker) as pool:

        def run(fn: Callable[[Job], tuple[str, str]], jobs: Sequence[Job]):
            chunk = max(1, min(32, len(jobs) // (workers * 4)))
            return pool.imap_unordered(fn, jobs, chunksize=chunk)

        yield run


def _params(source: PreparedSplit, corruption: str, severity: int, global_seed: int,
            channel_order: str = "rgb") -> dict:
    return {
        "corruption": corruption,
        "severity": severity,
        "source_split": source.name,
        "source_fingerprint": source.fingerprint,
        "global_seed": global_seed,
        "corruption_package": _package_version(),
        "corruption_code": CORRUPTION_CODE,
        **({} if channel_order == "rgb" else {"channel_order": channel_order}),
    }


def _output_name(file_name: str) -> str:
    return Path(file_name).with_suffix(".png").as_posix()


def _build_one(
    source: PreparedSplit, corruption: str, severity: int, *, root: Path | None,
    global_seed: int, run: Runner, progress: bool, channel_order: str = "rgb",
) -> PreparedSplit:
    name = corrupted_split_name(source.name, corruption, severity, channel_order)
    params = _params(source, corruption, severity, global_seed, channel_order)
    done = load_if_complete(name, root, params)
    if done is not None:
        return done
    out = split_dir(name, root)
    images = out / "images"
    (out / MANIFEST).unlink(missing_ok=True)
    state = out / _BUILD_STATE
    try:
        previous = json.loads(state.read_text())
    except (OSError, ValueError):
        previous = None
    if previous != params and images.exists():
        shutil.rmtree(images)  # outputs of other params, or of unknown provenance
    atomic_write_json(state, params)
    remove_stray_temp_files(images)

    coco = source.coco
    jobs: list[Job] = []
    new_images = []
    for img in coco["images"]:
        file_name = _output_name(img["file_name"])
        new_images.append({**img, "file_name": file_name})
        seed = corruption_seed(global_seed, img["id"], corruption, severity)
        src = str(source.image_path(img["file_name"]))
        jobs.append((file_name, src, str(images / file_name), seed))
    if len({j[0] for j in jobs}) != len(jobs):
        raise DataError(f"{source.annotation_path}: file names collide once given a .png suffix")

    hashes: dict[str, str] = {}
    bar = tqdm(total=len(jobs), desc=name, disable=not progress, leave=False)
    for file_name, digest in run(partial(_process, corruption, severity, channel_order), jobs):
        hashes[file_name] = digest
        bar.update()
    bar.close()

    extra = {
        **params,
        "image_hash": IMAGE_HASH,
        "image_sha256": dict(sorted(hashes.items())),
        "images_sha256": sha256_lines(sorted(hashes.values())),
    }
    split = write_split(
        name, {**coco, "images": new_images}, dataset=source.manifest.get("dataset", source.name),
        domain="corrupted", root=root, extra=extra,
    )
    state.unlink(missing_ok=True)
    return split


def build_corrupted_splits(
    source: PreparedSplit,
    corruptions: Iterable[str],
    severities: Iterable[int],
    *,
    root: Path | None = None,
    global_seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    channel_order: str = "rgb",
) -> list[PreparedSplit]:
    """Build every (corruption, severity) copy of ``source``, sharing one worker pool."""
    todo = [(c, s) for c in corruptions for s in severities]
    for c, s in todo:
        check_corruption(c, s)
    splits = []
    with _runner(workers) as run:
        for c, s in tqdm(todo, desc=f"{source.name}-C", disable=not progress or len(todo) < 2):
            splits.append(
                _build_one(
                    source, c, s, root=root, global_seed=global_seed, run=run, progress=progress,
                    channel_order=channel_order,
                )
            )
    return splits


def build_corrupted_split(
    source: PreparedSplit,
    corruption: str,
    severity: int,
    *,
    root: Path | None = None,
    global_seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    channel_order: str = "rgb",
) -> PreparedSplit:
    """Write ``<source>-C.<corruption>.<severity>`` (PNG; ``-Cbgr.`` for the BGR order);
    resumable and idempotent."""
    return build_corrupted_splits(
        source, [corruption], [severity], root=root, global_seed=global_seed,
        workers=workers, progress=progress, channel_order=channel_order,
    )[0]
