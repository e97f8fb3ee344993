"""Datasets: the preparer registry and the image I/O every preparer shares.

A *preparer* turns a dataset (generated, or raw files given with ``--raw PATH``) into prepared
splits (see :mod:`benchmark.data.split`). To add one, put

    @preparer("voc", add_arguments=lambda p: p.add_argument("--raw", type=Path, required=True))
    def prepare_voc(args: argparse.Namespace) -> list[PreparedSplit]: ...

in a module of the ``benchmark.data.sources`` package (found automatically) or of
:data:`PREPARER_MODULES`; ``python -m benchmark.prepare voc --raw ...`` then works. Every
preparer also receives the common options ``data_root``, ``seed``, ``workers``,
``corruptions`` (default ``none``), ``severities`` (default ``1-5``) and ``progress``;
``add_arguments`` may change those defaults with ``parser.set_defaults``.

This module imports no torch, so corruption worker processes stay light.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from benchmark.registry import Registry
from benchmark.store import atomic_write_bytes

if TYPE_CHECKING:
    from benchmark.data.split import PreparedSplit

Preparer = Callable[[argparse.Namespace], "list[PreparedSplit]"]
ArgAdder = Callable[[argparse.ArgumentParser], object]

PREPARERS: Registry[Preparer] = Registry("dataset")
PREPARER_ARGUMENTS: dict[str, ArgAdder] = {}

#: Modules whose import registers preparers (besides every module of ``SOURCES_PACKAGE``).
PREPARER_MODULES: tuple[str, ...] = ("benchmark.data.demo",)
SOURCES_PACKAGE = "benchmark.data.sources"

#: What the per-image hashes in manifests cover: decoded pixels, not file bytes, so a split
#: hashes the same whatever PNG/zlib build wrote it.
IMAGE_HASH = "sha256 of '<H>x<W>x3 uint8\\n' followed by the raw RGB bytes (row-major)"

PNG_COMPRESS_LEVEL = 1  # lossless whatever the level; see encode_png


def preparer(name: str, *, add_arguments: ArgAdder | None = None) -> Callable[[Preparer], Preparer]:
    """Register ``fn(args) -> list[PreparedSplit]`` as the preparer for dataset ``name``."""

    def deco(fn: Preparer) -> Preparer:
        PREPARERS.register(name)(fn)
        if add_arguments is not None:
            PREPARER_ARGUMENTS[name] = add_arguments
        return fn

    return deco


def load_preparers() -> Registry[Preparer]:
    """Import the preparer modules. A converter in ``SOURCES_PACKAGE`` that fails to import is
    skipped with a warning, so one broken converter does not take the whole CLI down."""
    for module in PREPARER_MODULES:
        importlib.import_module(module)
    try:
        package = importlib.import_module(SOURCES_PACKAGE)
    except ImportError:
        return PREPARERS
    for info in pkgutil.iter_modules(package.__path__, prefix=f"{SOURCES_PACKAGE}."):
        try:
            importlib.import_module(info.name)
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"warning: skipping {info.name} ({type(e).__name__}: {e})", file=sys.stderr)
    return PREPARERS


def read_rgb(path: Path | str) -> np.ndarray:
    """Decode an image file to an (H, W, 3) uint8 RGB array (the one decoder everyone uses, so
    on-the-fly and materialised corruptions start from identical pixels)."""
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG of an (H, W, 3) uint8 RGB array, tuned for speed at a near-best size.

    Paeth row filter + zlib level 1, Huffman-only: on 480x640 corrupted photos this encodes in
    ~10 ms against 20-60 ms for Pillow's writer at level 1, and the files are no larger
    (the row filter does the work; LZ matching finds little in noisy pixels).
    """
    params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESS_LEVEL,
              cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]  # fmt: skip
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.11
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]), params)
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()


def write_png(path: Path, image: np.ndarray) -> None:
    # No fsync: a file damaged by a power loss fails to decode and is regenerated on resume.
    atomic_write_bytes(path, encode_png(image), fsync=False)


def pixel_sha256(image: np.ndarray) -> str:
    """See :data:`IMAGE_HASH`."""
    h, w, c = image.shape
    digest = hashlib.sha256(f"{h}x{w}x{c} {image.dtype}\n".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()
