"""Safe extraction: members that would land outside the destination are refused before one
byte is written; the unpacked size is checked against the free disk space first."""

from __future__ import annotations

import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from benchmark.acquire.space import require_space
from benchmark.acquire.unpack import UnsafeArchive, extract, stamp_path
from benchmark.errors import StorageError


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _nothing_written(dest: Path, archive: Path) -> None:
    assert not dest.exists() or list(dest.iterdir()) == []
    assert not stamp_path(archive, dest).exists()


@pytest.mark.parametrize("bad", [
    ("../evil.txt", b"x"),
    ("VOCdevkit/../../evil.txt", b"x"),
    ("/tmp/evil.txt", b"x"),
    _link("VOCdevkit/out", "../../etc"),
    _link("VOCdevkit/abs", "/etc/passwd"),
    _link("VOCdevkit/hard", "../outside.txt", tarfile.LNKTYPE),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink"])
def test_a_member_leading_out_of_the_destination_is_refused(tmp_path, bad):
    archive = _tar(tmp_path / "a.tar", [("VOCdevkit/ok.txt", b"fine"), bad])
    dest = tmp_path / "raw"
    with pytest.raises(UnsafeArchive) as e:
        extract(archive, dest)
    msg = str(e.value)
    assert "\n" not in msg and str(archive) in msg and "refused, nothing extracted" in msg
    _nothing_written(dest, archive)
    assert not (tmp_path / "evil.txt").exists()


def test_a_zip_with_a_dotdot_member_is_refused(tmp_path):
    archive = tmp_path / "clipart.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("clipart/ok.txt", "fine")
        zf.writestr("../evil.txt", "x")
    with pytest.raises(UnsafeArchive, match=r"member '\.\./evil\.txt'"):
        extract(archive, tmp_path / "raw")
    _nothing_written(tmp_path / "raw", archive)


def test_links_inside_the_destination_are_kept(tmp_path):
    archive = _tar(tmp_path / "a.tar", [("d/file.txt", b"data"), _link("d/alias", "file.txt")])
    extract(archive, tmp_path / "raw")
    assert (tmp_path / "raw" / "d" / "alias").resolve() == (tmp_path / "raw/d/file.txt")


def test_archives_merge_into_one_tree_and_unpack_once(tmp_path):
    a = _tar(tmp_path / "trainval.tar", [("VOCdevkit/VOC2007/a.txt", b"a")])
    b = _tar(tmp_path / "test.tar", [("VOCdevkit/VOC2007/b.txt", b"b")])
    dest = tmp_path / "raw"
    assert extract(a, dest) and extract(b, dest)
    assert sorted(p.name for p in (dest / "VOCdevkit" / "VOC2007").iterdir()) == ["a.txt",
                                                                                "b.txt"]
    (dest / "VOCdevkit" / "VOC2007" / "a.txt").unlink()
    assert not extract(a, dest)  # its stamp: a second call is a no-op
    assert not any(p.name.endswith(".unpacking") for p in dest.iterdir())


def test_an_archive_larger_than_the_free_space_is_refused_naming_the_disk(tmp_path):
    """A zip whose directory declares more bytes than the disk holds (a zip bomb's shape)."""
    archive = tmp_path / "big.zip"
    free = shutil.disk_usage(tmp_path).free
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        with zf.open(zipfile.ZipInfo("ood_coco/huge.bin"), "w", force_zip64=True) as f:
            f.write(b"x" * 10)
        zf.filelist[0].file_size = free + 10**12  # what the central directory will say
    dest = tmp_path / "raw"
    with pytest.raises(StorageError) as e:
        extract(archive, dest)
    msg = str(e.value)
    assert f"not enough disk space in {dest} for unpacking big.zip" in msg and "free" in msg
    _nothing_written(dest, archive)


def test_the_space_check_reads_the_real_disk(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    require_space(tmp_path / "not" / "yet", 1, "a byte")  # nearest existing folder
    with pytest.raises(StorageError, match=r"needs .* GB, .* free"):
        require_space(tmp_path, free + 10**10, "x")
