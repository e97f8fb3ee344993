"""Fetch the catalogue's weights files a grid names, verify them, and load each through its
converter (the check ``run`` would do), printing one line per file."""

from __future__ import annotations

from collections.abc import Callable

from benchmark.acquire import mirrored
from benchmark.acquire.download import DEFAULT_TIMEOUT_S, download
from benchmark.acquire.space import human
from benchmark.errors import BenchmarkError
from benchmark.models.backbones import build_body
from benchmark.models.checkpoints import catalogue
from benchmark.models.checkpoints.catalogue import file_sha256, weights_path


def fetch_weights(pairs: list[tuple[str, str]], *, mirror: str | None = None,
                  timeout: float = DEFAULT_TIMEOUT_S, progress: bool = True,
                  convert: bool = True, say: Callable[[str], object] = print) -> int:
    """Fetch every (backbone, weights) pair's catalogue file not already present and intact;
    the number of files that failed (each named in one line)."""
    failed = 0
    for backbone, weights in pairs:
        path = weights_path(weights)
        entry = catalogue.lookup(weights)
        if path is None:
            continue
        if entry is None:
            state = "present" if path.is_file() else "missing: not in the catalogue, put it at"
            say(f"{'skip':10} {weights:30} {state} {path}")
            failed += not path.is_file()
            continue
        if path.is_file() and catalogue.hash_matches(entry, file_sha256(path)) is not False:
            say(f"{'present':10} {weights:30} {path}")
            continue
        if path.is_file():
            say(f"{'refetch':10} {weights:30} {path} has the wrong hash; fetching it again")
        checksums = [("sha256", entry.sha256)] if entry.sha256 else []
        try:
            got = download(mirrored(entry.url, entry.file, mirror), path, checksums=checksums,
                           timeout=timeout, progress=progress)
            note = ("sha256 verified" if got.verified
                    else "unverified: the publisher gives no hash")
            say(f"{'fetched':10} {weights:30} {path} ({human(got.size)}, "
                f"sha256 {got.digests['sha256']}; {note})")
            if convert:
                body = build_body(backbone, weights, 0)
                mapped = len(body.weights_report.mapped) if body.weights_report else 0
                say(f"{'converted':10} {weights:30} {entry.converter}: {mapped} keys mapped "
                    f"onto {backbone}")
        except BenchmarkError as e:
            say(f"{'failed':10} {weights:30} {e}")
            failed += 1
    return failed
