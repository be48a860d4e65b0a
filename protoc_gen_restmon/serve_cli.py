"""`restmon serve`: the REST gateway in proxy mode in front of a gRPC server, under uvicorn."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.specs import ROUTES_MODULE

if TYPE_CHECKING:  # the runtime is imported when serving only: `restmon generate` stays quick
    from protoc_gen_restmon.runtime.gateway.http import App
    from protoc_gen_restmon.runtime.monitor.monitor import Monitor

DEFAULT_GRACE = 10.0  # runtime.serving.DEFAULT_GRACE, not imported: `restmon generate` stays quick
# The gateway's error formats (runtime/gateway/http.py ERROR_FORMATS), here so that building the
# parser does not import the runtime.
ERROR_FORMATS = ("status", "google")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


class UsageError(Exception):
    """A command line that cannot be served: reported on stderr, exit status 2."""


def generated_packages(name: str) -> list[str]:
    """The generated packages `name` names: itself, or every one below it (`gen`)."""
    from protoc_gen_restmon.runtime.gateway.services import GeneratedPackage

    try:
        module = importlib.import_module(name)
    except ImportError as err:
        raise UsageError(f"cannot import {name}: {err}") from err
    found = [name]
    if not hasattr(module, "__path__") or not importlib.util.find_spec(f"{name}.{ROUTES_MODULE}"):
        found = [
            ".".join((name, *routes.parent.relative_to(directory).parts))
            for directory in getattr(module, "__path__", [])
            for routes in sorted(Path(directory).rglob(f"*/{ROUTES_MODULE}.py"))
        ]
    if not found:
        raise UsageError(
            f"{name} holds no protoc-gen-restmon modules ({ROUTES_MODULE}.py): "
            "give the package `restmon generate` wrote, e.g. gen.bookstore.v1 or gen"
        )
    for package in found:
        try:
            GeneratedPackage.load(package)
        except ConfigError as err:  # a route module without its monitor module
            raise UsageError(str(err)) from err
    return found


def proxy_gateway(args: argparse.Namespace) -> tuple[App, Monitor | None]:
    """The app `restmon serve` runs: the Gateway in proxy mode in front of `--upstream`;
    with `--db`, every call recorded there (the monitor, returned to be closed once the
    server has stopped) and the admin API (`/api/grpc/…`, `/cfg/grpc/…`, `/metrics`, behind
    admin credentials) served on the same port."""
    from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions, UpstreamOptions
    from protoc_gen_restmon.runtime.gateway.upstream import Target

    try:
        Target.parse(args.upstream)
    except ValueError as err:
        raise UsageError(str(err)) from err
    # Like `python -m`: modules are found from the current directory, then --path ones first.
    sys.path[:0] = [*args.path, os.getcwd()]
    packages = [found for name in args.package for found in generated_packages(name)]
    upstream = UpstreamOptions(
        deadline=args.deadline or None,
        connect_timeout=args.connect_timeout,
        tls=upstream_tls(args),
    )
    monitor = None if args.db is None else open_monitor(args.db, packages)
    try:
        gateway = Gateway(
            upstream=args.upstream,
            packages=packages,
            options=GatewayOptions(
                upstream=upstream,
                error_format=args.error_format,
                openapi_path=args.openapi_path or None,
                docs_path=(args.docs_path or None) if args.openapi_path else None,
            ),
            monitor=monitor,
        )
    except ConfigError as err:  # e.g. --docs-path on an API route's path
        if monitor is not None:
            monitor.close()
        raise UsageError(str(err)) from err
    if monitor is None:
        return gateway, None
    from protoc_gen_restmon.runtime.admin import AdminApp, with_admin

    admin = AdminApp(monitor, packages=packages, proto_dir=args.proto_dir)
    return with_admin(gateway, admin), monitor


def upstream_tls(args: argparse.Namespace) -> bool | ssl.SSLContext:
    """TLS to the upstream: off, the system's CAs (--upstream-tls), or a context trusting
    --upstream-ca and presenting --upstream-cert/--upstream-key (mutual TLS)."""
    if args.upstream_cert and not args.upstream_key:
        raise UsageError("--upstream-cert needs --upstream-key")
    if not (args.upstream_ca or args.upstream_cert):
        return bool(args.upstream_tls)
    try:
        context = ssl.create_default_context(cafile=args.upstream_ca)
        if args.upstream_cert:
            context.load_cert_chain(args.upstream_cert, args.upstream_key)
    except (OSError, ssl.SSLError) as err:
        raise UsageError(f"upstream TLS: {err}") from err
    context.set_alpn_protocols(["h2"])  # gRPC is HTTP/2
    return context


def open_monitor(url: str, packages: list[str]) -> Monitor:
    from protoc_gen_restmon.runtime.monitor.monitor import Monitor

    try:
        return Monitor(url, packages=packages)
    except Exception as err:  # whatever the store says: the server must not start without it
        raise UsageError(f"--db {url}: {err}") from err


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from protoc_gen_restmon.runtime.serving import run, serve_until_stopped

    try:
        app, monitor = proxy_gateway(args)
    except UsageError as err:
        print(f"restmon serve: {err}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        root_path=args.root_path,
        log_level=args.log_level,
        lifespan="on",
    )
    # On SIGTERM/SIGINT: stop accepting, give calls --grace seconds, then close the monitor.
    run(serve_until_stopped(config, monitor=monitor, grace=args.grace))
    return 0


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the REST routes of generated packages in front of a gRPC server",
        description="Run the REST gateway (uvicorn) in proxy mode: every HTTP binding of the "
        "generated packages, each call made on the --upstream gRPC server.",
    )
    serve.add_argument("--upstream", required=True, metavar="HOST:PORT", help="the gRPC server")
    serve.add_argument(
        "--package",
        action="append",
        required=True,
        metavar="MODULE",
        help="a generated package (gen.bookstore.v1), or a package holding them (gen); repeatable",
    )
    serve.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="put DIR on sys.path first (the directory holding the generated `gen/`); "
        "the current directory is always searched",
    )
    serve.add_argument(
        "--upstream-tls", action="store_true", help="connect with TLS, trusting the system's CAs"
    )
    serve.add_argument("--upstream-ca", metavar="FILE", help="connect with TLS, trusting this CA")
    serve.add_argument("--upstream-cert", metavar="FILE", help="client certificate (mutual TLS)")
    serve.add_argument("--upstream-key", metavar="FILE", help="the client certificate's key")
    serve.add_argument("--host", default="127.0.0.1", help="listen address; default 127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="listen port; default 8080")
    serve.add_argument(
        "--deadline",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="timeout of a call without a Grpc-Timeout header (0: none); default 30",
    )
    serve.add_argument(
        "--connect-timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how long connecting to the upstream may take before a 503; default 2",
    )
    serve.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help="on SIGTERM or SIGINT, how long calls in flight may take before they are "
        "cancelled; then every record is written and the process exits 0; "
        f"default {DEFAULT_GRACE:g}",
    )
    serve.add_argument(
        "--error-format",
        default="status",
        choices=ERROR_FORMATS,
        help="error bodies: a google.rpc.Status (status, the default) or Google's AIP-193 "
        '{"error": {"code", "message", "status", "details"}} (google), which Google\'s '
        "generated REST clients read",
    )
    serve.add_argument(
        "--openapi-path",
        default="/openapi.json",
        metavar="PATH",
        help="where the OpenAPI document is served; '' turns it (and the docs page) off; "
        "default /openapi.json",
    )
    serve.add_argument(
        "--docs-path",
        default="/docs",
        metavar="PATH",
        help="where the docs page (Swagger UI) is served; '' turns it off; default /docs",
    )
    serve.add_argument("--root-path", default="", help="the path prefix a reverse proxy strips")
    serve.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    serve.add_argument(
        "--db",
        metavar="URL",
        help="record every call into this database: sqlite:///restmon.db or postgresql://…",
    )
    serve.add_argument(
        "--proto-dir",
        type=Path,
        metavar="DIR",
        help="where the admin API's POST /cfg/grpc/proto-files/generate/ writes .proto files",
    )
    serve.set_defaults(run=cmd_serve)
