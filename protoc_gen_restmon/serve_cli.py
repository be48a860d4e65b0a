"""`restmon serve`: the REST gateway in proxy mode in front of a gRPC server, under uvicorn."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.specs import ROUTES_MODULE

if TYPE_CHECKING:  # the runtime is imported when serving only: `restmon generate` stays quick
    import uvicorn

    from protoc_gen_restmon.runtime.connections import ConnectionLimits
    from protoc_gen_restmon.runtime.gateway.http import App
    from protoc_gen_restmon.runtime.gateway.upstream import RetryPolicy, UpstreamTls
    from protoc_gen_restmon.runtime.monitor.monitor import Monitor

DEFAULT_GRACE = 10.0  # runtime.serving.DEFAULT_GRACE, not imported: `restmon generate` stays quick
# The gateway's error formats (runtime/gateway/http.py ERROR_FORMATS), here so that building the
# parser does not import the runtime.
ERROR_FORMATS = ("status", "google")
LOAD_BALANCING = ("round_robin", "pick_first")  # runtime/gateway/upstream.py LOAD_BALANCING
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
ALL_METHODS = "*"  # --require-key *: every method needs a key
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # runtime/monitor/shared_metrics.py MULTIPROC_ENV
HTTP_PROTOCOLS = ("auto", "httptools", "h11")
# runtime.connections.ConnectionLimits' defaults (tests/test_hostile_clients.py checks them):
# (flag, field, type, default, metavar, help).
LIMIT_FLAGS: tuple[tuple[str, str, type, float, str, str], ...] = (
    (
        "--head-timeout",
        "head_timeout",
        float,
        5.0,
        "SECONDS",
        "close a connection whose request head is not complete this long after it opened "
        "(or after its first byte on a kept-alive connection): 408",
    ),
    (
        "--keep-alive-timeout",
        "keep_alive_timeout",
        float,
        5.0,
        "SECONDS",
        "close a connection idle this long between two requests",
    ),
    (
        "--max-head-bytes",
        "max_head_bytes",
        int,
        64 * 1024,
        "BYTES",
        "a request head larger than this is a 431",
    ),
    (
        "--min-body-rate",
        "min_body_rate",
        float,
        1024.0,
        "BYTES_PER_S",
        "a request body slower than this on average, after --body-grace, is a 408",
    ),
    (
        "--body-grace",
        "body_grace",
        float,
        5.0,
        "SECONDS",
        "how long a request body may take before --min-body-rate applies",
    ),
    (
        "--max-connections",
        "max_connections",
        int,
        1000,
        "N",
        "open connections at most (lowered below the open file limit); at the limit a new one "
        "closes the longest idle one, or gets a 503 when none is idle",
    ),
)


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
    from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions
    from protoc_gen_restmon.runtime.gateway.upstream import Target, UpstreamOptions

    try:
        Target.parse(args.upstream)
        upstream = UpstreamOptions(
            deadline=args.deadline or None,
            connect_timeout=args.connect_timeout,
            keepalive=args.keepalive or None,
            tls=upstream_tls(args),
            load_balancing=args.load_balancing,
            retry=retry_policy(args.retry_attempts),
            channel_options=tuple(args.upstream_option),
            transport=args.upstream_transport,
        )
    except ValueError as err:
        raise UsageError(str(err)) from err
    # Like `python -m`: modules are found from the current directory, then --path ones first.
    sys.path[:0] = [*args.path, os.getcwd()]
    packages = [found for name in args.package for found in generated_packages(name)]
    if args.require_key and args.db is None:
        raise UsageError("--require-key needs --db (the API keys live in the store)")
    monitor = None if args.db is None else open_monitor(args.db, packages, args.require_key)
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
    except ConfigError as err:  # a TLS file that cannot be read, --docs-path on a route
        if monitor is not None:
            monitor.close()
        raise UsageError(str(err)) from err
    if monitor is None:
        return gateway, None
    from protoc_gen_restmon.runtime.admin import AdminApp, with_admin

    admin = AdminApp(monitor, packages=packages, proto_dir=args.proto_dir)
    return with_admin(gateway, admin), monitor


def upstream_tls(args: argparse.Namespace) -> bool | UpstreamTls:
    """TLS to the upstream: off, the system's CAs (--upstream-tls), or trusting --upstream-ca
    and presenting --upstream-cert/--upstream-key (mutual TLS); the files are read when the
    gateway is built."""
    from protoc_gen_restmon.runtime.gateway.upstream import UpstreamTls

    if args.upstream_cert and not args.upstream_key:
        raise UsageError("--upstream-cert needs --upstream-key")
    if not (args.upstream_ca or args.upstream_cert or args.upstream_server_name):
        return bool(args.upstream_tls)
    return UpstreamTls(
        ca=args.upstream_ca,
        cert=args.upstream_cert,
        key=args.upstream_key,
        server_name=args.upstream_server_name,
    )


def retry_policy(attempts: int) -> RetryPolicy | None:
    """--retry-attempts N: gRPC retries of the idempotent methods (0: none)."""
    from protoc_gen_restmon.runtime.gateway.upstream import RetryPolicy

    return None if attempts == 0 else RetryPolicy(max_attempts=attempts)


def channel_option(text: str) -> tuple[str, int | str]:
    """`--upstream-option grpc.max_receive_message_length=8388608`: a grpcio channel argument,
    an integer when the value is one."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    try:
        return key.strip(), int(value)
    except ValueError:
        return key.strip(), value


def open_monitor(url: str, packages: list[str], require_key: Sequence[str] = ()) -> Monitor:
    from protoc_gen_restmon.runtime.monitor.access import KeyPolicy
    from protoc_gen_restmon.runtime.monitor.monitor import Monitor

    require: bool | list[str] = ALL_METHODS in require_key or list(require_key)
    try:
        KeyPolicy(require)  # checked before the store is opened
    except ConfigError as err:
        raise UsageError(f"--require-key: {err}") from err
    try:
        return Monitor(url, packages=packages, require_keys=require)
    except Exception as err:  # whatever the store says: the server must not start without it
        raise UsageError(f"--db {url}: {err}") from err


def worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of processes") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count}: at least 1 worker is needed")
    return count


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """The HTTP connection bounds (docs/deployment.md), for `restmon serve` and the demo."""
    limits = parser.add_argument_group("connection limits (docs/deployment.md)")
    for flag, _, kind, default, metavar, help_text in LIMIT_FLAGS:
        limits.add_argument(
            flag,
            type=kind,
            default=default,
            metavar=metavar,
            help=f"{help_text}; default {default:g}",
        )
    limits.add_argument(
        "--http",
        default="auto",
        choices=HTTP_PROTOCOLS,
        help="uvicorn's HTTP/1.1 parser: httptools when installed (auto), or h11",
    )


def connection_limits(args: argparse.Namespace) -> ConnectionLimits:
    from protoc_gen_restmon.runtime.connections import ConnectionLimits

    return ConnectionLimits(**{field: getattr(args, field) for _, field, *_ in LIMIT_FLAGS})


def cmd_serve(args: argparse.Namespace) -> int:
    if args.workers > 1:
        return serve_workers(args)
    return serve_here(args)


def serve_here(args: argparse.Namespace, sockets: Sequence[socket.socket] | None = None) -> int:
    """Serve in this process: `--workers 1`, and each worker of `--workers N` (on `sockets`,
    the listening socket its parent bound)."""
    from protoc_gen_restmon.runtime.serving import run, serve_until_stopped

    try:
        app, monitor = proxy_gateway(args)
    except UsageError as err:
        print(f"restmon serve: {err}", file=sys.stderr)
        return 2
    config = uvicorn_config(args, app)
    # On SIGTERM/SIGINT: stop accepting, give calls --grace seconds, then close the monitor.
    limits = connection_limits(args)
    run(
        serve_until_stopped(
            config, monitor=monitor, grace=args.grace, limits=limits, sockets=sockets
        )
    )
    return 0


def uvicorn_config(args: argparse.Namespace, app: App) -> uvicorn.Config:
    import uvicorn

    return uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        root_path=args.root_path,
        log_level=args.log_level,
        lifespan="on",
        http=args.http,
    )


def serve_workers(args: argparse.Namespace) -> int:
    """`--workers N`: the arguments checked and the store migrated here, once (the gateway and
    monitor built, then closed), the port bound once, then N worker processes serving it
    (`runtime/workers.py`), each with its own upstream channel and monitor, the metrics
    shared through prometheus_client's multiprocess files in a directory of this run."""
    from protoc_gen_restmon.runtime.workers import Supervisor

    try:
        app, monitor = proxy_gateway(args)
    except UsageError as err:
        print(f"restmon serve: {err}", file=sys.stderr)
        return 2
    if monitor is not None:
        monitor.close()
    from uvicorn.config import LOG_LEVELS as UVICORN_LEVELS  # "trace" is uvicorn's

    logging.basicConfig(format="restmon serve: %(message)s", level=UVICORN_LEVELS[args.log_level])
    listening = uvicorn_config(args, app).bind_socket()  # uvicorn exits 1 when it cannot bind
    with tempfile.TemporaryDirectory(prefix="restmon-metrics-") as metrics:
        supervisor = Supervisor(
            command=lambda index: worker_command(args, listening, index),
            count=args.workers,
            env={**os.environ, MULTIPROC_ENV: metrics},
            pass_fds=[listening.fileno()],
            on_exit=lambda pid: process_dead(pid, metrics),
            on_stop=listening.close,
        )
        status = supervisor.run()
    listening.close()
    if status:
        print("restmon serve: a worker failed (see above)", file=sys.stderr)
    return status


def worker_command(args: argparse.Namespace, listening: socket.socket, index: int) -> list[str]:
    """The worker's command line: this one, given to `serve_worker` with the socket's fd."""
    module = "protoc_gen_restmon.serve_worker"
    fd = str(listening.fileno())
    return [sys.executable, "-m", module, "--listen-fd", fd, "--index", str(index), *args.argv]


def process_dead(pid: int, metrics: str) -> None:
    """A worker has exited: its live gauges leave the totals (its counters stay)."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid, metrics)  # type: ignore[no-untyped-call]


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the REST routes of generated packages in front of a gRPC server",
        description="Run the REST gateway (uvicorn) in proxy mode: every HTTP binding of the "
        "generated packages, each call made on the --upstream gRPC server.",
    )
    serve.add_argument(
        "--upstream",
        required=True,
        metavar="TARGET",
        help="the gRPC server: HOST:PORT, or a gRPC target naming several replicas "
        "(dns:///HOST:PORT, ipv4:ADDR:PORT,ADDR:PORT)",
    )
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
    serve.add_argument(
        "--upstream-server-name",
        metavar="NAME",
        help="the name to verify in the upstream's certificate (default: the target's host)",
    )
    serve.add_argument(
        "--load-balancing",
        default="round_robin",
        choices=LOAD_BALANCING,
        help="how calls spread over the target's addresses: each to the next ready one "
        "(round_robin, the default) or all to the first that connects (pick_first)",
    )
    serve.add_argument(
        "--keepalive",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="ping the upstream connections this often, dropping one whose ping is not "
        "answered within --connect-timeout (0, the default: no pings)",
    )
    serve.add_argument(
        "--retry-attempts",
        type=int,
        default=0,
        choices=range(0, 6),
        metavar="N",
        help="try a call of an idempotent method (GET bindings, idempotency_level) up to N "
        "times in all when it fails UNAVAILABLE (2 to 5; 0, the default: never retried)",
    )
    serve.add_argument(
        "--upstream-option",
        action="append",
        default=[],
        type=channel_option,
        metavar="KEY=VALUE",
        help="a grpcio channel argument (grpc.max_receive_message_length=8388608), "
        "overriding the gateway's; repeatable",
    )
    serve.add_argument(
        "--upstream-transport",
        choices=("auto", "grpcio", "asyncio"),
        default=os.environ.get("RESTMON_UPSTREAM_TRANSPORT", "auto"),
        help="who makes the upstream calls: grpcio's channel (C-core; every option above) "
        "or an HTTP/2 client on the gateway's event loop (asyncio: lower latency; one "
        "host:port or unix:path, no retries, no --upstream-option); auto: asyncio unless "
        "the target or options need grpcio. Default $RESTMON_UPSTREAM_TRANSPORT, else auto",
    )
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
        "--require-key",
        action="append",
        default=[],
        metavar="SCOPE",
        help="calls of this service (pkg.Service) or method (/pkg.Service/Method) need an API "
        "key (x-api-key), * for every method; repeatable; needs --db",
    )
    serve.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        metavar="N",
        help="serve with N processes sharing the port, each with its own upstream channel and "
        "monitor (1, the default: this process serves)",
    )
    serve.add_argument(
        "--proto-dir",
        type=Path,
        metavar="DIR",
        help="where the admin API's POST /cfg/grpc/proto-files/generate/ writes .proto files",
    )
    add_limit_arguments(serve)
    serve.set_defaults(run=cmd_serve)
