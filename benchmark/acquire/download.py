"""The one HTTP client of the suite: fetch a URL to a file, resumably and verified.

The bytes go to ``<target>.part`` and only a complete file whose checksums match is renamed
onto ``target``, so a failure never leaves anything at the target path. A ``.part`` left by an
interrupted transfer is resumed with an HTTP ``Range`` request; one whose checksum turns out
wrong is deleted, so the next try starts clean. Google Drive's "can't scan this file for
viruses" page is followed (its ``confirm`` token, from the ``download_warning`` cookie or the
page's download form). Every failure is one :class:`DownloadError` line naming the URL.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from tqdm import tqdm

from benchmark.acquire.space import human, require_space
from benchmark.errors import BenchmarkError

CHUNK = 1 << 20  # hashing
NET_CHUNK = 1 << 16  # a dropped connection loses at most this much of what arrived
DEFAULT_TIMEOUT_S = 60.0
USER_AGENT = "robust-det-bench (python-requests)"
#: what a dropped or stalled transfer raises (resumable, unlike an HTTP error status)
_DROPPED = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_DRIVE_FILE = re.compile(r"^https://drive\.google\.com/(?:file/d/|open\?id=|uc\?.*id=)"
                         r"([-\w]+)")


class DownloadError(BenchmarkError):
    """A download that failed or was refused (status, timeout, checksum, disk space)."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    digests: dict[str, str]  # algorithm -> hex digest of the file (sha256 always)
    verified: bool  # a published checksum was checked (False: none is published)


def drive_download_url(url: str) -> str:
    """A Google Drive file page (``/file/d/ID/view``) as its direct download URL; any other
    URL unchanged."""
    m = _DRIVE_FILE.match(url)
    return f"https://drive.google.com/uc?export=download&id={m.group(1)}" if m else url


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def file_digests(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    hashes = {a: hashlib.new(a) for a in {"sha256", *algorithms}}
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            for h in hashes.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


def check_digests(url: str, digests: dict[str, str],
                  checksums: Iterable[tuple[str, str]]) -> bool:
    """True when a published checksum was checked; DownloadError on a mismatch (a checksum
    may be a prefix, as torch.hub puts in file names)."""
    checked = False
    for algorithm, expected in checksums:
        if not digests[algorithm].startswith(expected.lower()):
            raise DownloadError(f"{url}: {algorithm} {digests[algorithm]} does not match the "
                                f"published {expected}")
        checked = True
    return checked


def download(url: str, target: Path, *, checksums: Iterable[tuple[str, str]] = (),
             size: int | None = None, timeout: float = DEFAULT_TIMEOUT_S, retries: int = 2,
             progress: bool = True, session: requests.Session | None = None) -> Downloaded:
    """Fetch ``url`` to ``target`` (see the module doc). ``retries``: resumptions after a
    dropped connection or a stall within this call; ``timeout``: seconds without data."""
    target = Path(target)
    checksums = [(a.lower(), h) for a, h in checksums]
    part = part_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if session is None:
        with requests.Session() as own:
            return download(url, target, checksums=checksums, size=size, timeout=timeout,
                            retries=retries, progress=progress, session=own)
    session.headers.setdefault("User-Agent", USER_AGENT)
    source = drive_download_url(url)
    for attempt in range(retries + 1):
        try:
            _transfer(session, source, url, part, size, timeout, progress)
            break
        except _DROPPED as e:
            kept = part.stat().st_size if part.exists() else 0
            if attempt < retries:
                continue
            why = (f"no data for {timeout:g} s (timeout)" if _is_timeout(e)
                   else "the connection was dropped")
            keep = f"; {human(kept)} kept in {part}, rerun to resume" if kept else ""
            raise DownloadError(f"{url}: {why}{keep}") from None
    digests = file_digests(part, [a for a, _ in checksums])
    try:
        verified = check_digests(url, digests, checksums)
    except DownloadError as e:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{e}; the download was deleted, nothing written to {target}") \
            from None
    os.replace(part, target)
    return Downloaded(target, target.stat().st_size, digests, verified)


def _is_timeout(e: Exception) -> bool:
    return isinstance(e, requests.Timeout) or "timed out" in str(e).lower()


def _transfer(session: requests.Session, source: str, url: str, part: Path,
              size: int | None, timeout: float, progress: bool) -> None:
    """One request: append to ``part`` from where it ends (or start over when the server
    ignores the range)."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    r = _get(session, source, headers, timeout)
    with r:
        if r.status_code == 416 and have:  # nothing after the end: the .part is complete
            return
        if r.status_code >= 400:
            raise DownloadError(f"{url}: HTTP {r.status_code} {r.reason}".rstrip())
        if r.status_code != 206 or not _resumes_at(r, have):
            have = 0
        length = r.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else size
        if total is not None:
            require_space(part.parent, total - have, url)
        with part.open("ab" if have else "wb") as f, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name[:-len(".part")], disable=not progress, leave=False,
        ) as bar:
            for block in r.iter_content(NET_CHUNK):
                f.write(block)
                bar.update(len(block))


def _resumes_at(r: requests.Response, have: int) -> bool:
    m = re.match(r"bytes (\d+)-", r.headers.get("Content-Range", ""))
    return bool(m) and int(m.group(1)) == have


def _get(session: requests.Session, url: str, headers: dict[str, str],
         timeout: float) -> requests.Response:
    """GET ``url``, past a Google Drive confirmation page when one is served instead."""
    r = session.get(url, headers=headers, stream=True, timeout=(timeout, timeout))
    for _ in range(2):
        if r.status_code >= 400 or "text/html" not in r.headers.get("Content-Type", ""):
            return r
        page = r.text[:1 << 20]
        r.close()
        nxt = confirmation_url(r.url, page, r.cookies)
        if nxt is None:
            raise DownloadError(f"{url}: the server sent a web page, not the file (a sign-in "
                                f"or quota page?)")
        r = session.get(nxt, headers=headers, stream=True, timeout=(timeout, timeout))
    return r


def confirmation_url(url: str, page: str, cookies: requests.cookies.RequestsCookieJar
                     ) -> str | None:
    """Where Google Drive's confirmation page leads: its download form (action + hidden
    inputs), or ``url`` with the ``confirm`` token of a ``download_warning`` cookie or of a
    ``confirm=`` link. None when the page has none."""
    form = re.search(r'<form[^>]*id="download-form"[^>]*action="([^"]+)"[^>]*>(.*?)</form>',
                     page, re.S)
    if form:
        inputs = re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"',
                            form.group(2))
        action = html.unescape(form.group(1))
        return f"{action}?{urlencode([(k, html.unescape(v)) for k, v in inputs])}"
    token = next((v for k, v in cookies.items() if k.startswith("download_warning")), None)
    if token is None:
        m = re.search(r"confirm=([-\w]+)", page)
        token = m.group(1) if m else None
    if token is None:
        return None
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "confirm"] + [("confirm", token)]
    return urlunsplit(parts._replace(query=urlencode(query)))
