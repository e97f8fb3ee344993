"""Safe extraction of a downloaded tar or zip archive.

Every member is checked before one byte is written: no absolute names, no ``..`` components,
no links leading out of the destination, no device files; and the unpacked size must fit on
the disk. The members are unpacked into a staging folder beside them and then moved into the
destination, so a failure part-way leaves only the staging folder (removed) behind. A stamp
file ``.<archive>.extracted`` makes a second call a no-op.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from benchmark.acquire.space import require_space
from benchmark.errors import DataError


class UnsafeArchive(DataError):
    """An archive member that would land outside the destination, or is not a plain file."""


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    link: str | None = None  # the target of a symbolic or hard link
    hard: bool = False
    special: bool = False  # a device, fifo or other non-file, non-directory member


def _members(archive: Path) -> list[Member]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            out = []
            for info in zf.infolist():
                mode = info.external_attr >> 16
                link = zf.read(info).decode("utf-8", "replace") if stat.S_ISLNK(mode) else None
                out.append(Member(info.filename, info.file_size, link))
            return out
    try:
        with tarfile.open(archive) as tf:
            return [Member(m.name, m.size if m.isfile() else 0,
                           m.linkname if m.issym() or m.islnk() else None, m.islnk(),
                           not (m.isfile() or m.isdir() or m.issym() or m.islnk()))
                    for m in tf.getmembers()]
    except tarfile.TarError as e:
        raise DataError(f"{archive}: not a readable tar or zip archive ({e})") from None


def _inside(name: str) -> bool:
    """A relative POSIX path that stays inside its root once normalised."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return False
    norm = posixpath.normpath(name.replace("\\", "/"))
    return norm != ".." and not norm.startswith("../")


def check_members(archive: Path, members: list[Member]) -> None:
    """UnsafeArchive naming the first member that could write outside the destination."""
    for m in members:
        why = None
        if not _inside(m.name):
            why = "an absolute path or one leading out of the destination (../)"
        elif m.special:
            why = "a device, fifo or other special file"
        elif m.link is not None:
            # a hard link names a member path; a symbolic one is relative to its own folder
            base = "" if m.hard else posixpath.dirname(m.name.replace("\\", "/"))
            if not _inside(posixpath.join(base, m.link)) or m.link.startswith("/"):
                why = f"a link to {m.link!r}, outside the destination"
        if why:
            raise UnsafeArchive(f"{archive}: member {m.name!r} is {why}; refused, nothing "
                                f"extracted")


def stamp_path(archive: Path, dest: Path) -> Path:
    return dest / f".{archive.name}.extracted"


def extract(archive: Path, dest: Path) -> bool:
    """Unpack ``archive`` into ``dest`` (see the module doc). False when it already was."""
    archive, dest = Path(archive), Path(dest)
    stamp = stamp_path(archive, dest)
    if stamp.is_file():
        return False
    members = _members(archive)
    check_members(archive, members)
    require_space(dest, sum(m.size for m in members), f"unpacking {archive.name}")
    staging = dest / f".{archive.name}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(staging, filter="data")
        _merge(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    stamp.write_text(f"{archive.name}: {len(members)} members\n", encoding="utf-8")
    return True


def _merge(staging: Path, dest: Path) -> None:
    """Move everything under ``staging`` into ``dest``, merging folders (the VOC tars share
    ``VOCdevkit/``); files already there are replaced."""
    for root, dirs, files in os.walk(staging):
        rel = Path(root).relative_to(staging)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            os.replace(Path(root) / name, dest / rel / name)
        for name in list(dirs):
            src = Path(root) / name
            if src.is_symlink():
                os.replace(src, dest / rel / name)
                dirs.remove(name)
