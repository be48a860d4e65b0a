"""`make demo`: the example bookstore over gRPC (grpclib, :50051) and REST (uvicorn, :8080), every
call recorded by a Monitor (SQLite, OUTPUT_ROOT/restmon.db, or --db URL) and the admin API on the
REST port. SIGTERM or SIGINT stops it cleanly (runtime/serving.py): calls in flight get --grace
seconds, every record is written, the store is closed, the exit status is 0.

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
from protoc_gen_restmon.runtime import (
    AdminApp,
    Gateway,
    Monitor,
    add_limit_arguments,
    connection_limits,
    create_admin_token,
    serve_until_stopped,
    with_admin,
)

GRACE = 10.0  # seconds calls in flight get on SIGTERM/SIGINT (restmon serve's --grace default)

CURLS = """\
API docs: http://{host}:{port}/docs (Swagger UI), the OpenAPI document: http://{host}:{port}/openapi.json
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
(with --db {db}).
"""


def demo_token(monitor: Monitor) -> str:
    """A new admin token when the store has no active one; else a hint (tokens are shown once)."""
    if any(token.is_active for token in monitor.store.admin_tokens()):
        return "<the token printed when this database was created>"
    _, secret = create_admin_token(monitor.store, "demo")
    return secret


async def serve(args: argparse.Namespace) -> None:
    root, host, http_port = args.root, args.host, args.http_port
    sys.path.insert(0, root)
    pb = importlib.import_module("gen.bookstore.v1")
    service = make_service(pb)
    db = args.db or f"sqlite:///{Path(root).resolve() / 'restmon.db'}"
    monitor = Monitor(db, packages=[pb])
    grpc_server = Server([service])
    monitor.attach(grpc_server)
    await grpc_server.start(host, args.grpc_port)
    gateway = Gateway(services=[service], monitor=monitor)
    admin = AdminApp(monitor, packages=[pb], proto_dir=Path(root) / "protos")
    print(f"gRPC on {host}:{args.grpc_port}, REST on http://{host}:{http_port}")
    print(CURLS.format(host=host, port=http_port))
    print(ADMIN.format(port=http_port, db=db, token=demo_token(monitor)), flush=True)
    config = uvicorn.Config(
        with_admin(gateway, admin), host=host, port=http_port, log_level="warning", http=args.http
    )
    await serve_until_stopped(
        config,
        grpc=[grpc_server],
        monitor=monitor,
        grace=args.grace,
        limits=connection_limits(args),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, default=50051)
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--db", help="sqlite:///FILE or postgresql://…; default ROOT/restmon.db")
    parser.add_argument(
        "--grace",
        type=float,
        default=GRACE,
        help=f"seconds calls in flight get on SIGTERM/SIGINT; default {GRACE:g}",
    )
    add_limit_arguments(parser)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
