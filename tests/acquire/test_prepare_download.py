"""``python -m benchmark.prepare FAMILY --download --raw DIR``: the archives come from the
(local) mirror, are checked, unpacked safely and converted; login-only datasets print the
steps instead."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from benchmark.data.archives import DATASETS
from benchmark.prepare import main
from tests.test_sources_voc import add_image, obj, write_set


def _clipart_zip(tmp_path: Path, extra: str | None = None) -> bytes:
    ds = tmp_path / "src" / "clipart"
    add_image(ds, "c1", (64, 48), [obj("person", (5, 5, 30, 40))])
    add_image(ds, "c2", (50, 40), [obj("dog", (1, 1, 20, 20))])
    write_set(ds, "test", ["c1", "c2"])
    archive = tmp_path / "clipart.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(ds.rglob("*")):
            zf.write(p, p.relative_to(ds.parent).as_posix())
        if extra:
            zf.writestr(extra, "x")
    return archive.read_bytes()


def _args(tmp_path: Path, *more: str) -> list[str]:
    return ["clipart", "--download", "--raw", str(tmp_path / "raw"), "--allow-partial",
            "--data-root", str(tmp_path / "data"), "--quiet", *more]


def test_download_unpack_and_convert(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_MIRROR", server.url)
    server.add("clipart.zip", _clipart_zip(tmp_path))
    assert main(_args(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "fetched    clipart.zip" in out and "unverified: no published checksum" in out
    assert "clipart_test: 2 images, 2 boxes" in out
    assert (tmp_path / "data" / "clipart_test" / "manifest.json").is_file()
    (tmp_path / "raw" / "clipart.zip").unlink()  # space reclaimed: nothing fetched again
    assert main(_args(tmp_path)) == 0
    assert "unpacked   clipart.zip (earlier)" in capsys.readouterr().out
    assert len(server.ranges("clipart.zip")) == 1


def test_an_archive_with_a_dotdot_member_is_refused_in_one_line(server, tmp_path, capsys):
    server.add("clipart.zip", _clipart_zip(tmp_path, extra="../evil.txt"))
    assert main(_args(tmp_path, "--mirror", server.url)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "'../evil.txt'" in line and "refused" in line
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "raw" / "clipart").exists()
    assert not (tmp_path / "data" / "clipart_test").exists()


def test_a_404_is_one_line(server, tmp_path, capsys):
    assert main(_args(tmp_path, "--mirror", server.url)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: {server.url}/clipart.zip: HTTP 404 Not Found"
    assert not (tmp_path / "raw" / "clipart.zip").exists()


@pytest.mark.parametrize("family", ["cityscapes", "foggy_cityscapes", "bdd100k"])
def test_login_datasets_print_the_steps_and_the_files(family, tmp_path, capsys):
    raw = tmp_path / "raw"
    assert main([family, "--download", "--raw", str(raw)]) == 1
    out = capsys.readouterr().out
    assert "needs an account" in out and str(raw) in out
    for a in DATASETS[family].archives:
        assert a.file in out


def test_every_public_family_has_a_download_flag():
    from benchmark.prepare import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for family in ("voc", "clipart", "watercolor", "comic", "coco", "coco_o"):
        assert "--download" in help_text[family].format_help(), family


def test_a_choice_of_splits_fetches_only_their_archives():
    from benchmark.acquire.datasets import chosen_splits

    def files(family: str, values: list[str]) -> list[str]:
        return [a.file for a in DATASETS[family].archives_for(chosen_splits(family, values))]

    assert files("voc", ["voc07_test"]) == ["VOCtest_06-Nov-2007.tar"]
    assert files("coco", ["val2017"]) == ["annotations_trainval2017.zip", "val2017.zip"]
    assert files("coco_o", ["sketch"]) == ["ood_coco.zip"]
    assert len(files("voc", [])) == 3
