"""Retriever: an HTTP service (stdlib WSGI) that returns the documents matching a query.

Run it traced: ``memlens run -- python retriever.py --port 8001``.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server

DOCUMENTS = [
    "KV cache memory grows with context length",
    "INT4 weights take a quarter of the fp16 bytes",
    "gRPC carries traceparent in its metadata",
]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def search(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", ""))).get("q", [""])[0]
    words = set(query.lower().split())
    hits = [d for d in DOCUMENTS if words & set(d.lower().split())]
    body = json.dumps({"query": query, "documents": hits}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    with make_server("127.0.0.1", args.port, search, handler_class=QuietHandler) as server:
        print(f"ready {server.server_port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
