"""`make demo`: the example bookstore over gRPC (grpclib, :50051) and REST (uvicorn, :8080).

Usage: python -m examples.serve OUTPUT_ROOT   (the directory holding the generated `gen/`)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys

import uvicorn
from grpclib.server import Server

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.gateway import Gateway

CURLS = """\
Try:
  curl -s localhost:{port}/v1/shelves
  curl -s localhost:{port}/v1/shelves/fiction/books/dune
  curl -s -X POST localhost:{port}/v1/shelves/fiction/books -H 'content-type: application/json' \\
       -d '{{"title": "Solaris", "genres": ["GENRE_SCIENCE_FICTION"]}}'
  curl -s -X PATCH localhost:{port}/v1/shelves/fiction/books/dune -d '{{"title": "Dune (1965)"}}' \\
       -H 'content-type: application/json'
  curl -s 'localhost:{port}/v1/shelves/fiction:watch'
  curl -s localhost:{port}/v1/genres
  curl -si localhost:{port}/v1/shelves/nowhere
"""


async def serve(root: str, host: str, grpc_port: int, http_port: int) -> None:
    sys.path.insert(0, root)
    pb = importlib.import_module("gen.bookstore.v1")
    service = make_service(pb)
    grpc_server = Server([service])
    await grpc_server.start(host, grpc_port)
    print(f"gRPC on {host}:{grpc_port}, REST on http://{host}:{http_port}")
    print(CURLS.format(port=http_port), flush=True)
    config = uvicorn.Config(
        Gateway(services=[service]), host=host, port=http_port, log_level="warning"
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        grpc_server.close()
        await grpc_server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, default=50051)
    parser.add_argument("--http-port", type=int, default=8080)
    args = parser.parse_args()
    asyncio.run(serve(args.root, args.host, args.grpc_port, args.http_port))


if __name__ == "__main__":
    main()
