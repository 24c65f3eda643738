"""Gateway: the HTTP entry point. ``GET /ask?q=...`` asks the retriever (HTTP, httpx) for
documents and the generator (gRPC) for an answer.

Run it traced: ``memlens run -- python gateway.py --port 8000 --retriever
http://127.0.0.1:8001 --generator 127.0.0.1:8002``.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import grpc
import httpx

SERVICE = "memlens.example.Generator"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Gateway:
    def __init__(self, retriever: str, generator: str) -> None:
        self.http = httpx.Client(base_url=retriever, timeout=10)
        self.channel = grpc.insecure_channel(generator)
        self.generate = self.channel.unary_unary(
            f"/{SERVICE}/Generate",
            request_serializer=lambda m: json.dumps(m).encode(),
            response_deserializer=json.loads,
        )

    def ask(self, question: str) -> dict[str, Any]:
        found = self.http.get("/search", params={"q": question}).json()  # call: retriever
        documents = found["documents"]
        reply = self.generate({"question": question, "documents": documents})  # call: generator
        return {"question": question, "documents": documents, **reply}

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., object]
    ) -> Iterable[bytes]:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        try:
            result = self.ask(query.get("q", [""])[0])
        except grpc.RpcError as exc:
            start_response("502 Bad Gateway", [("Content-Type", "application/json")])
            return [json.dumps({"error": exc.details()}).encode()]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(result).encode()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--retriever", default="http://127.0.0.1:8001")
    parser.add_argument("--generator", default="127.0.0.1:8002")
    args = parser.parse_args()
    app = Gateway(args.retriever, args.generator)
    with make_server("127.0.0.1", args.port, app, handler_class=QuietHandler) as server:
        print(f"ready {server.server_port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
