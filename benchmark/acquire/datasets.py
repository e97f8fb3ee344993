"""Fetch a dataset family's raw archives (:data:`benchmark.data.archives.DATASETS`) into a
folder, verify and unpack them there; the converter then reads ``<folder>/<raw_subdir>``.

Archives already downloaded are checked again, not fetched again; archives already unpacked
(their stamp, :func:`benchmark.acquire.unpack.stamp_path`) are skipped even once deleted.
Families behind a login raise :class:`ManualDownload` with the steps until their archives
have been put in the folder by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmark.acquire import ManualDownload, mirrored
from benchmark.acquire.download import (
    DEFAULT_TIMEOUT_S,
    DownloadError,
    check_digests,
    download,
    file_digests,
)
from benchmark.acquire.space import human
from benchmark.acquire.unpack import extract, stamp_path
from benchmark.data.archives import DATASETS, Archive, RawDataset
from benchmark.errors import ConfigError


def dataset(family: str) -> RawDataset:
    if family not in DATASETS:
        raise ConfigError(f"--download: no public archives known for {family!r} (known: "
                          f"{', '.join(DATASETS)}); fetch it by hand, see datasets/*.md")
    return DATASETS[family]


def chosen_splits(family: str, values: list[str] | None) -> list[str] | None:
    """A preparer's ``--splits`` / ``--domains`` values as prepared split names (``val2017``
    of coco is ``coco_val2017``)."""
    if not values:
        return None
    names = dataset(family).splits
    return [n for v in values for n in (v, f"{family}_{v}") if n in names]


def fetch_raw(family: str, raw: Path, *, splits: list[str] | None = None,
              mirror: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
              progress: bool = True, say: Callable[[str], object] = print) -> Path:
    """Download (or find), verify and unpack the archives ``splits`` need (all without a
    choice) into ``raw``; the folder the family's converter reads."""
    ds = dataset(family)
    raw = Path(raw)
    archives = ds.archives_for(splits)
    if ds.login:
        absent = [a for a in archives
                  if not (raw / a.file).is_file() and not stamp_path(raw / a.file, raw).is_file()]
        if absent:
            files = ", ".join(a.file for a in absent)
            raise ManualDownload(ds.login.format(files=files, raw=raw))
    for a in archives:
        _fetch_one(a, raw, login=bool(ds.login), mirror=mirror, timeout=timeout,
                   progress=progress, say=say)
    return raw / ds.raw_subdir if ds.raw_subdir else raw


def _fetch_one(a: Archive, raw: Path, *, login: bool, mirror: str | None, timeout: float,
               progress: bool, say: Callable[[str], object]) -> None:
    target = raw / a.file
    if stamp_path(target, raw).is_file():
        say(f"{'unpacked':10} {a.file} (earlier)")
        return
    algorithms = [alg for alg, _ in a.checksums]
    if target.is_file():
        try:
            verified = check_digests(a.url, file_digests(target, algorithms), a.checksums)
            say(f"{'present':10} {a.file} ({'verified' if verified else 'unverified'})")
        except DownloadError as e:
            if login:
                raise
            say(f"{'refetch':10} {a.file}: {e}")
            target.unlink()
    if not target.is_file():
        got = download(mirrored(a.url, a.file, mirror), target, checksums=a.checksums,
                       size=a.size, timeout=timeout, progress=progress)
        how = ("verified: " + ", ".join(f"{alg} {got.digests[alg]}" for alg in algorithms)
               if got.verified else f"unverified: no published checksum (sha256 "
               f"{got.digests['sha256']})")
        say(f"{'fetched':10} {a.file} ({human(got.size)}; {how})")
    if extract(target, raw):
        say(f"{'unpacked':10} {a.file} -> {raw}")
