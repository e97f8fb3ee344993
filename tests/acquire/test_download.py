"""The HTTP client against a local server: clean, resumed, refused and stalled downloads.
Each failure is one line naming the URL, and nothing is ever left at the target path."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from benchmark.acquire.download import DownloadError, download, drive_download_url, part_path
from benchmark.errors import StorageError
from tests.acquire.server import payload

DATA = payload(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_a_clean_download_is_verified_and_lands_whole(server, tmp_path):
    url = server.add("w.pth", DATA)
    got = download(url, tmp_path / "w.pth", checksums=[("sha256", SHA)], progress=False)
    assert (tmp_path / "w.pth").read_bytes() == DATA and got.verified
    assert got.digests["sha256"] == SHA and got.size == len(DATA)
    assert not part_path(tmp_path / "w.pth").exists()
    assert server.ranges("w.pth") == [None]


def test_no_published_hash_is_reported_unverified(server, tmp_path):
    got = download(server.add("w.pth", DATA), tmp_path / "w.pth", progress=False)
    assert not got.verified and got.digests["sha256"] == SHA


def test_a_dropped_connection_is_resumed_with_a_range_request(server, tmp_path):
    url = server.add("w.pth", DATA)
    server.behaviour.drop_after["/w.pth"] = 120_000
    target = tmp_path / "w.pth"
    with pytest.raises(DownloadError) as e:
        download(url, target, checksums=[("sha256", SHA)], retries=0, progress=False)
    msg = _one_line(e)
    assert url in msg and "dropped" in msg and "rerun to resume" in msg
    kept = part_path(target).stat().st_size  # what arrived, but for the last network read
    assert not target.exists() and 120_000 - 2**16 < kept <= 120_000
    got = download(url, target, checksums=[("sha256", SHA)], retries=0, progress=False)
    assert server.ranges("w.pth") == [None, f"bytes={kept}-"]
    assert got.verified and hashlib.sha256(target.read_bytes()).hexdigest() == SHA
    assert not part_path(target).exists()


def test_a_drop_is_resumed_within_one_call_by_default(server, tmp_path):
    url = server.add("w.pth", DATA)
    server.behaviour.drop_after["/w.pth"] = 150_000
    download(url, tmp_path / "w.pth", checksums=[("sha256", SHA)], progress=False)
    assert (tmp_path / "w.pth").read_bytes() == DATA
    assert server.ranges("w.pth") == [None, f"bytes={2 * 2**16}-"]


def test_a_wrong_hash_is_refused_and_a_retry_starts_clean(server, tmp_path):
    url = server.add("w.pth", DATA)
    target = tmp_path / "w.pth"
    with pytest.raises(DownloadError) as e:
        download(url, target, checksums=[("sha256", "0" * 64)], progress=False)
    msg = _one_line(e)
    assert url in msg and SHA in msg and "0" * 64 in msg and "nothing written" in msg
    assert not target.exists() and not part_path(target).exists()
    download(url, target, checksums=[("sha256", SHA[:8])], progress=False)  # a prefix
    assert target.read_bytes() == DATA
    assert server.ranges("w.pth") == [None, None]  # the retry did not resume the bad bytes


def test_other_algorithms_as_datasets_publish_them(server, tmp_path):
    url = server.add("a.tar", DATA)
    md5 = hashlib.md5(DATA).hexdigest()
    assert download(url, tmp_path / "a.tar", checksums=[("md5", md5)], progress=False).verified
    with pytest.raises(DownloadError, match="sha1 .* does not match"):
        download(url, tmp_path / "b.tar", checksums=[("sha1", "ab" * 20)], progress=False)


def test_a_404_is_one_line_naming_url_and_status(server, tmp_path):
    url = f"{server.url}/nowhere.pth"
    with pytest.raises(DownloadError) as e:
        download(url, tmp_path / "nowhere.pth", progress=False)
    assert _one_line(e) == f"{url}: HTTP 404 Not Found"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("after", [None, 10_000], ids=["before-headers", "mid-file"])
def test_a_stalled_server_times_out_naming_the_timeout(server, tmp_path, after):
    url = server.add("w.pth", DATA)
    server.behaviour.stall_after["/w.pth"] = after
    target = tmp_path / "w.pth"
    with pytest.raises(DownloadError) as e:
        download(url, target, timeout=0.5, retries=0, progress=False)
    msg = _one_line(e)
    assert url in msg and "no data for 0.5 s (timeout)" in msg
    assert not target.exists()


def test_a_file_larger_than_the_free_space_is_refused_before_writing(server, tmp_path):
    url = server.add("big.tar", DATA)
    free = shutil.disk_usage(tmp_path).free
    server.behaviour.claimed_length["/big.tar"] = free + 10**9
    target = tmp_path / "big.tar"
    with pytest.raises(StorageError) as e:
        download(url, target, progress=False)
    msg = _one_line(e)
    assert f"not enough disk space in {tmp_path}" in msg and "free" in msg and url in msg
    assert not target.exists() and not part_path(target).exists()


@pytest.mark.parametrize("style", ["form", "cookie"])
def test_a_google_drive_confirmation_page_is_followed(server, tmp_path, style):
    server.add("w.pth", DATA)
    server.behaviour.drive["1aBc-D_e"] = "/w.pth"
    server.behaviour.drive_style = style
    url = f"{server.url}/uc?export=download&id=1aBc-D_e"
    got = download(url, tmp_path / "w.pth", checksums=[("sha256", SHA)], progress=False)
    assert got.verified and (tmp_path / "w.pth").read_bytes() == DATA
    assert any("confirm=t0k3n-Xy_9" in p for p, _ in server.behaviour.log)


def test_a_web_page_without_a_token_is_refused(server, tmp_path):
    server.add("w.pth", DATA)
    server.behaviour.drive["x"] = "/w.pth"
    server.behaviour.drive_style = "none"
    url = f"{server.url}/download?id=x"
    with pytest.raises(DownloadError, match="sent a web page, not the file"):
        download(url, tmp_path / "w.pth", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_drive_file_pages_become_download_urls():
    page = "https://drive.google.com/file/d/1z-1V3rdFiwqSECz7Wkmn4VJVefJGJGiF"
    assert drive_download_url(page + "/view?usp=sharing") == drive_download_url(page) == (
        "https://drive.google.com/uc?export=download&id=1z-1V3rdFiwqSECz7Wkmn4VJVefJGJGiF")
    assert drive_download_url("https://example.org/a.pth") == "https://example.org/a.pth"
