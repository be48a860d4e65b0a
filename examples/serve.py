"""`make demo`: the example bookstore over gRPC (grpclib, :50051) and REST (uvicorn, :8080), every
call recorded by a Monitor (SQLite, OUTPUT_ROOT/restmon.db) and the admin API on the REST port.

Usage: python -m examples.serve OUTPUT_ROOT   (the directory holding the generated `gen/`)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

import uvicorn
from grpclib.server import Server

from examples.bookstore import make_service
from protoc_gen_restmon.runtime import AdminApp, Gateway, Monitor, create_admin_token, with_admin

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

ADMIN = """\
Admin API (every call above, over REST or gRPC, is recorded in {db}):
  export RESTMON_TOKEN={token}
  curl -s localhost:{port}/api/grpc/monitor/requests/ -H "Authorization: Bearer $RESTMON_TOKEN"
  curl -s localhost:{port}/api/grpc/monitor/methods/ -H "Authorization: Bearer $RESTMON_TOKEN"
  curl -s localhost:{port}/cfg/grpc/proto-files/ -H "Authorization: Bearer $RESTMON_TOKEN"
  curl -s localhost:{port}/metrics -H "Authorization: Bearer $RESTMON_TOKEN"
More tokens, a password for HTTP Basic, API keys: restmon admin --help, restmon keys --help
(with --db sqlite:///{db}).
"""


def demo_token(monitor: Monitor) -> str:
    """A new admin token when the store has no active one; else a hint (tokens are shown once)."""
    store = monitor.store
    if any(token.is_active for token in store.admin_tokens()):
        return "<the token printed when this database was created>"
    _, secret = create_admin_token(store, "demo")
    return secret


async def serve(root: str, host: str, grpc_port: int, http_port: int) -> None:
    sys.path.insert(0, root)
    pb = importlib.import_module("gen.bookstore.v1")
    service = make_service(pb)
    db = Path(root).resolve() / "restmon.db"
    monitor = Monitor(f"sqlite:///{db}", packages=[pb])
    grpc_server = Server([service])
    monitor.attach(grpc_server)
    await grpc_server.start(host, grpc_port)
    gateway = Gateway(services=[service], monitor=monitor)
    admin = AdminApp(monitor, packages=[pb], proto_dir=Path(root) / "protos")
    print(f"gRPC on {host}:{grpc_port}, REST on http://{host}:{http_port}")
    print(CURLS.format(port=http_port))
    print(ADMIN.format(port=http_port, db=db, token=demo_token(monitor)), flush=True)
    config = uvicorn.Config(
        with_admin(gateway, admin), host=host, port=http_port, log_level="warning"
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        grpc_server.close()
        await grpc_server.wait_closed()
        await monitor.aclose()


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
