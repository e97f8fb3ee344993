"""A file server on 127.0.0.1 for the acquisition tests: HTTP Range requests, and on request
the failures the downloader must survive — a connection dropped mid-file, a stall, a
Content-Length the disk cannot hold, a Google Drive style confirmation page. Never the
internet."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Behaviour:
    files: dict[str, bytes] = field(default_factory=dict)  # "/name" -> content
    drop_after: dict[str, int] = field(default_factory=dict)  # drop once after N bytes
    stall_after: dict[str, int | None] = field(default_factory=dict)  # None: before headers
    claimed_length: dict[str, int] = field(default_factory=dict)  # a lying Content-Length
    drive: dict[str, str] = field(default_factory=dict)  # Drive id -> "/name" it serves
    drive_style: str = "form"  # "form" | "cookie" | "none" (a page without a token)
    log: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    release: threading.Event = field(default_factory=threading.Event)


TOKEN = "t0k3n-Xy_9"


class Handler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        b = self.server.behaviour
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        b.log.append((self.path, self.headers.get("Range")))
        if path in ("/uc", "/download") and "id" in query:
            return self._drive(query)
        self._serve(path)

    def _drive(self, query: dict[str, list[str]]) -> None:
        b = self.server.behaviour
        file_id = query["id"][0]
        if file_id not in b.drive:
            return self._status(404)
        if query.get("confirm", [""])[0] == TOKEN:
            return self._serve(b.drive[file_id])
        if b.drive_style == "form":
            page = (f'<html><body>Google Drive can\'t scan this file for viruses.'
                    f'<form id="download-form" action="{self.server.url}/download" '
                    f'method="get"><input type="submit" value="Download anyway"/>'
                    f'<input type="hidden" name="id" value="{file_id}">'
                    f'<input type="hidden" name="export" value="download">'
                    f'<input type="hidden" name="confirm" value="{TOKEN}">'
                    f'<input type="hidden" name="uuid" value="u-1"></form></body></html>')
            cookie = None
        else:
            page = "<html><body>Google Drive - Virus scan warning</body></html>"
            cookie = (f"download_warning_13058876669334088843_{file_id}={TOKEN}; Path=/"
                      if b.drive_style == "cookie" else None)
        data = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, path: str) -> None:
        b = self.server.behaviour
        if path in b.stall_after and b.stall_after[path] is None:
            b.release.wait(30)
            return
        if path not in b.files:
            return self._status(404)
        data = b.files[path]
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        length = b.claimed_length.get(path, len(body))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if path in b.claimed_length:
            return
        cut = b.drop_after.pop(path, None)
        if cut is not None:
            self.wfile.write(body[:cut - start])
            self.wfile.flush()
            self.close_connection = True
            return
        stall = b.stall_after.get(path)
        if stall is not None:
            self.wfile.write(body[:stall])
            self.wfile.flush()
            b.release.wait(30)
            return
        self.wfile.write(body)


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.behaviour = Behaviour()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, name: str, data: bytes) -> str:
        """Serve ``data`` at ``/<name>``; its URL."""
        self.behaviour.files[f"/{name}"] = data
        return f"{self.url}/{name}"

    def ranges(self, name: str) -> list[str | None]:
        """The Range header of every request for ``/<name>`` so far."""
        return [r for p, r in self.behaviour.log if urlsplit(p).path == f"/{name}"]


def payload(n: int, seed: int = 0) -> bytes:
    """``n`` reproducible pseudo-random bytes (incompressible, like a checkpoint)."""
    return random.Random(seed).randbytes(n)
