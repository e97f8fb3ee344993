"""Acquisition, on request only: weights files and raw dataset archives fetched over HTTP,
verified and unpacked (``python -m benchmark.weights fetch``, ``python -m benchmark.prepare
FAMILY --download``), and the listing of what a grid still lacks (``run --dry-run``).

:mod:`.download` is the one HTTP client (``requests`` + ``tqdm``); :mod:`.unpack` extracts
archives safely; :mod:`.space` checks disk space; :mod:`.checkpoints` and :mod:`.datasets`
fetch catalogue weights and dataset archives; :mod:`.inputs` lists a grid's inputs.
Nothing else in the suite touches the network: ``run``, the demo and the tests never do.

``$BENCH_MIRROR`` (or ``--mirror URL``) replaces every source URL with ``<mirror>/<file
name>``: a local copy of the files, or a test server.
"""

from __future__ import annotations

import os

from benchmark.errors import BenchmarkError


class ManualDownload(BenchmarkError):
    """A dataset behind a login: the message is the steps to fetch it by hand (lines)."""


def mirrored(url: str, file: str, mirror: str | None = None) -> str:
    """``url``, or ``<mirror>/<file>`` when a mirror is given or ``$BENCH_MIRROR`` is set."""
    base = mirror or os.environ.get("BENCH_MIRROR")
    return f"{base.rstrip('/')}/{file}" if base else url
