"""Generator: a gRPC service that "generates" an answer from documents.

Messages are JSON bytes so that the example needs no generated protobuf code. Run it
traced: ``memlens run -- python generator.py --port 8002``.
"""

from __future__ import annotations

import argparse
import json
from concurrent import futures
from typing import Any

import grpc

SERVICE = "memlens.example.Generator"


def generate(request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
    documents = request.get("documents", [])
    if not documents:
        context.abort(grpc.StatusCode.NOT_FOUND, "no documents to answer from")
    answer = f"{request['question']}: {documents[0]}"
    return {"answer": answer, "tokens": len(answer.split())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Generate": grpc.unary_unary_rpc_method_handler(
                generate,
                request_deserializer=json.loads,
                response_serializer=lambda m: json.dumps(m).encode(),
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"ready {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
