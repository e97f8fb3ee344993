"""Image files checked against their split before anything trains or evaluates on them.

When a split is written, ``files.json`` beside its manifest records every image file's size
and sha256, and the manifest records the sha256 of ``files.json`` (so the split's content
fingerprint covers every image). :func:`verify_split` compares the files on disk with it: a
changed, truncated or replaced image is an error naming the file and both hashes.

Re-hashing 120k COCO images on every run would cost minutes, so verified files are cached by
(size, mtime, inode) under ``<artifacts>/verified/``: a rerun only stats the files, and a
file touched since is hashed again. ``full=True`` (``run --verify``) ignores the cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from benchmark.data.split import FILES, PreparedSplit
from benchmark.errors import DataError, StorageError
from benchmark.store import artifacts_root, atomic_write_json, sha256_bytes, sha256_file, warn


def _recorded(split: PreparedSplit) -> dict[str, list[Any]]:
    """{file_name: [size, sha256]} as written with the split, checked against its manifest."""
    path = split.root / FILES
    expected = split.manifest.get("files_sha256")
    if expected is None:
        raise DataError(
            f"{split.root / 'manifest.json'}: files_sha256 missing: the split was prepared by "
            f"an older version; prepare it again (`python -m benchmark.prepare ...`)"
        )
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: unreadable: {e.strerror or e}") from None
    if sha256_bytes(raw) != expected:
        raise DataError(f"{path}: sha256 {sha256_bytes(raw)} differs from the manifest's "
                        f"files_sha256 {expected}: the split was changed after it was written")
    return json.loads(raw)


def _cache_path(split: PreparedSplit) -> Path:
    return artifacts_root() / "verified" / f"{split.name}.json"


def verify_split(split: PreparedSplit, *, full: bool = False) -> tuple[int, int]:
    """Check every image file of ``split``; return (files checked, files hashed). Raises
    :class:`DataError` naming the first file that is missing or differs."""
    recorded = _recorded(split)
    cache_file = _cache_path(split)
    cache: dict[str, list[Any]] = {}
    if not full and cache_file.is_file():
        try:
            saved = json.loads(cache_file.read_text())
            if saved.get("fingerprint") == split.fingerprint:
                cache = saved["files"]
        except (OSError, ValueError, KeyError):
            cache = {}
    hashed = 0
    fresh: dict[str, list[Any]] = {}
    try:
        for name, (size, sha) in recorded.items():
            path = split.image_path(name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise DataError(f"{path}: image of split {split.name!r} not found") from None
            stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
            if cache.get(name) == [*stamp, sha]:
                fresh[name] = cache[name]
                continue
            found = sha256_file(path)
            hashed += 1
            if found != sha:
                sizes = "" if st.st_size == size else f" ({st.st_size} bytes, expected {size})"
                raise DataError(
                    f"{path}: sha256 {found}, expected sha256 {sha}{sizes} as recorded in "
                    f"{split.root / FILES}: the image changed after split {split.name!r} was "
                    "prepared; restore it or prepare the split again"
                )
            fresh[name] = [*stamp, sha]
    finally:
        if hashed:
            merged = {k: v for k, v in {**cache, **fresh}.items() if k in recorded}
            try:
                atomic_write_json(cache_file, {"fingerprint": split.fingerprint, "files": merged})
            except StorageError as e:  # only a cache: the next run hashes again
                warn(f"{e} (the verification cache; the next run hashes these files again)")
    return len(recorded), hashed


def verify_splits(names: list[str] | tuple[str, ...], *, full: bool = False) -> tuple[int, int]:
    """Verify the image files every named split reads (a corrupted split made on the fly
    reads its base split); return (files checked, files hashed)."""
    from benchmark.data.split import resolve_split

    splits: dict[str, PreparedSplit] = {}
    for name in names:
        split = resolve_split(name, check_images=False).split
        splits.setdefault(split.name, split)
    checked = hashed = 0
    for split in splits.values():
        c, h = verify_split(split, full=full)
        checked, hashed = checked + c, hashed + h
    return checked, hashed
