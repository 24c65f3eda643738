"""A real HTTP server that answers like Jaeger's query service (recorded JSON in
tests/support/fixtures/jaeger), and like some other web server under ``/html/``; the
``jaeger`` fixture in tests/tracing/conftest.py serves it on a free loopback port."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

FIXTURES = Path(__file__).parent / "fixtures" / "jaeger"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_ID_64 = "a3ce929d0e0e4736"
"""A 64-bit trace id, as Jaeger's own clients make them; served with the same spans."""


class FakeJaeger(BaseHTTPRequestHandler):
    """Answers like Jaeger's query service; ``/html/...`` like some other web server."""

    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        FakeJaeger.requests.append(self.path)
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path.startswith("/html/"):
            self._send(200, b"<!doctype html><title>not jaeger</title>", "text/html")
        elif url.path == "/jaeger/api/services":
            self._send(200, (FIXTURES / "services.json").read_bytes())
        elif url.path in (f"/jaeger/api/traces/{TRACE_ID}", f"/jaeger/api/traces/{TRACE_ID_64}"):
            self._send(200, (FIXTURES / "trace.json").read_bytes())
        elif url.path.startswith("/jaeger/api/traces/"):
            self._send(404, (FIXTURES / "not_found.json").read_bytes())
        elif url.path == "/jaeger/api/traces" and query.get("service") == ["gateway"]:
            self._send(200, (FIXTURES / "trace.json").read_bytes())
        elif url.path == "/jaeger/api/traces" and query.get("service") == ["broken"]:
            document = json.loads((FIXTURES / "trace.json").read_bytes())
            del document["data"][0]["spans"][0]["startTime"]
            self._send(200, json.dumps(document).encode())
        elif url.path == "/jaeger/api/traces":
            self._send(400, (FIXTURES / "bad_query.json").read_bytes())
        else:
            self._send(404, b"404 page not found\n", "text/plain")


@contextmanager
def serving() -> Iterator[str]:
    """The fake Jaeger's base URL while it serves."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeJaeger)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeJaeger.requests = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
