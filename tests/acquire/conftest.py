"""The local file server every acquisition test downloads from (127.0.0.1 only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.acquire.server import FileServer


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.behaviour.release.set()
        srv.shutdown()
        srv.server_close()
