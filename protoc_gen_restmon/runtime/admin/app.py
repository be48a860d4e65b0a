"""The admin REST API (docs/monitoring-api.md §4) as an ASGI app: routes and their handlers."""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from protoc_gen_restmon.runtime.admin.auth import AdminAuth
from protoc_gen_restmon.runtime.admin.protofiles import ProtoFiles
from protoc_gen_restmon.runtime.admin.queries import bad, parse_query
from protoc_gen_restmon.runtime.admin.routes import (
    Reply,
    Request,
    Route,
    match_route,
    path_segments,
)
from protoc_gen_restmon.runtime.admin.schemas import encode_key, encode_record, encode_series
from protoc_gen_restmon.runtime.gateway.http import (
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    respond,
    respond_error,
    serve_lifespan,
)
from protoc_gen_restmon.runtime.jsoncodec.read import JsonSyntaxError, load_json
from protoc_gen_restmon.runtime.monitor.model import Store, StoreError
from protoc_gen_restmon.runtime.status import Code, RpcError

__all__ = ["AdminApp", "MonitorLike"]

logger = logging.getLogger("protoc_gen_restmon.admin")

BODY_LIMIT = 64 * 1024
PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"
TEXT = b"text/plain; charset=utf-8"
HTML = b"text/html; charset=utf-8"
METRICS = "/metrics"
DASHBOARD = "dashboard.html"
# The page's vendored files (assets/README.md says where from), served beside it.
ASSETS = {
    "uPlot.iife.min.js": b"text/javascript; charset=utf-8",
    "uPlot.min.css": b"text/css; charset=utf-8",
}
ASSET_HEADERS = [
    (b"cache-control", b"private, max-age=3600"),
    (b"x-content-type-options", b"nosniff"),
]
# The page's own CSP (a meta tag) allows only its inline script and style; framing and
# sniffing can only be refused by headers.
DASHBOARD_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class MonitorLike(Protocol):
    """What the admin API needs of a `Monitor`."""

    @property
    def store(self) -> Store: ...

    def health(self) -> Mapping[str, Any]: ...

    def metrics(self) -> bytes: ...


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def json_reply(value: Any) -> Reply:
    return Reply(200, json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


class AdminApp:
    """Every admin endpoint, behind admin authentication (`/metrics` too unless
    `public_metrics`). Mount it anywhere: paths are matched below `root_path`.

    `packages`: generated packages (modules or dotted names) whose `.proto` files are served;
    `proto_dir`: where `POST …/proto-files/generate/` writes them (None: that endpoint fails);
    `clock`: the current time (aware UTC) that windows (`?hours=`) and key validity are relative
    to, for tests.
    """

    def __init__(
        self,
        monitor: MonitorLike,
        *,
        packages: Sequence[ModuleType | str] = (),
        proto_dir: Path | None = None,
        public_metrics: bool = False,
        auth_cache_seconds: float = 60.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.monitor = monitor
        self.clock = clock
        self.store = monitor.store
        self.protos = ProtoFiles(packages, proto_dir)
        self.auth = AdminAuth(self.store, cache_seconds=auth_cache_seconds)
        self.public_metrics = public_metrics
        self.routes = self._routes()
        files = importlib.resources.files(__package__)
        self.dashboard_page = files.joinpath(DASHBOARD).read_bytes()
        self.assets = {
            name: files.joinpath("assets").joinpath(name).read_bytes() for name in ASSETS
        }

    def _routes(self) -> list[Route]:
        get = "GET"
        return [
            Route.of(get, "/cfg/grpc/proto-files/", self.proto_list),
            Route.of(get, "/cfg/grpc/proto-files/download-all/", self.proto_zip),
            Route.of("POST", "/cfg/grpc/proto-files/generate/", self.proto_generate),
            Route.of(get, "/cfg/grpc/proto-files/{app_label}/", self.proto_file),
            Route.of(get, "/api/grpc/api-keys/", self.key_list),
            Route.of(get, "/api/grpc/api-keys/stats/", self.key_stats),
            Route.of(get, "/api/grpc/api-keys/{id}/", self.key_detail),
            Route.of(get, "/api/grpc/monitor/requests/", self.requests),
            Route.of(get, "/api/grpc/monitor/health/", self.health),
            Route.of(get, "/api/grpc/monitor/overview/", self.overview),
            Route.of(get, "/api/grpc/monitor/services/", self.services),
            Route.of(get, "/api/grpc/monitor/methods/", self.methods),
            Route.of(get, "/api/grpc/monitor/timeseries/", self.timeseries),
            Route.of(get, "/api/grpc/monitor/dashboard/", self.dashboard),
            Route.of(get, "/api/grpc/monitor/dashboard/{asset}", self.dashboard_asset),
            Route.of(get, METRICS, self.metrics),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)  # the monitor's owner runs its lifecycle
            return
        if scope["type"] != "http":
            return
        try:
            reply = await self._handle(scope, receive)
        except RpcError as error:
            await respond_error(send, error, [])
            return
        except StoreError as error:
            logger.warning("admin API: store failed on %s: %s", scope["path"], error)
            # The detail (host, port, database) is for the log, not for whoever is asking.
            unavailable = RpcError(Code.UNAVAILABLE, "the monitor's store is unavailable")
            await respond_error(send, unavailable, [])
            return
        except ClientDisconnected:
            return
        except Exception:
            logger.exception("admin API error on %s %s", scope["method"], scope["path"])
            await respond_error(send, RpcError(Code.INTERNAL, "internal error"), [])
            return
        await respond(send, reply.status, reply.body, reply.headers, reply.content_type)

    async def _handle(self, scope: Scope, receive: Receive) -> Reply:
        """Authenticate, route, parse, run the handler: every failure is an RpcError."""
        public = self.public_metrics and path_segments(scope) == [METRICS.strip("/")]
        if not public:
            # Before any 404/405: without credentials, nothing tells which paths exist.
            await self.auth.check(header(scope, b"authorization"))
        route, param = match_route(self.routes, scope["method"], scope)
        params = parse_query(bytes(scope.get("query_string", b"")))
        body = await read_body(receive, BODY_LIMIT) if route.method == "POST" else b""
        return await route.handler(Request(param, params, body))

    # --- Proto files ---

    async def proto_list(self, request: Request) -> Reply:
        return json_reply(await asyncio.to_thread(self.protos.listing))

    async def proto_file(self, request: Request) -> Reply:
        file = self.protos.files.get(request.param)
        if file is None:
            raise RpcError(Code.NOT_FOUND, f"no proto file with app_label {request.param!r}")
        return Reply(200, file.data, TEXT)

    async def proto_zip(self, request: Request) -> Reply:
        data = await asyncio.to_thread(self.protos.zip_bytes)
        disposition = (b"content-disposition", b'attachment; filename="protos.zip"')
        return Reply(200, data, b"application/zip", [disposition])

    async def proto_generate(self, request: Request) -> Reply:
        apps, force = _generate_options(request.body)
        try:
            answer = await asyncio.to_thread(self.protos.generate, apps, force)
        except LookupError as error:
            raise RpcError(Code.FAILED_PRECONDITION, str(error)) from None
        return json_reply(answer)

    # --- API keys ---

    async def key_list(self, request: Request) -> Reply:
        params = request.params
        is_active, key_type, user_id = (
            params.boolean("is_active"),
            params.key_type(),
            params.user_id(),
        )
        keys = await asyncio.to_thread(self.store.keys, is_active, key_type, user_id)
        now = self.clock()
        return json_reply({"results": [encode_key(k, now) for k in keys], "count": len(keys)})

    async def key_detail(self, request: Request) -> Reply:
        try:
            key_id = int(request.param, 10)
        except ValueError:
            key_id = -1
        key = await asyncio.to_thread(self.store.key, key_id) if key_id >= 0 else None
        if key is None:
            raise RpcError(Code.NOT_FOUND, f"no API key with id {request.param!r}")
        return json_reply(encode_key(key, self.clock()))

    async def key_stats(self, request: Request) -> Reply:
        return json_reply(dict(await asyncio.to_thread(self.store.key_stats, self.clock())))

    # --- Monitoring ---

    async def requests(self, request: Request) -> Reply:
        query = request.params.request_query()
        page = await asyncio.to_thread(self.store.requests, query)
        return json_reply(
            {"results": [encode_record(r) for r in page.results], "count": page.count}
        )

    async def health(self, request: Request) -> Reply:
        return json_reply(dict(await asyncio.to_thread(self.monitor.health)))

    async def overview(self, request: Request) -> Reply:
        now = self.clock()
        since = request.params.since(now)
        return json_reply(dict(await asyncio.to_thread(self.store.overview, since, now)))

    async def services(self, request: Request) -> Reply:
        since = request.params.since(self.clock())
        rows = await asyncio.to_thread(self.store.services, since)
        return json_reply({"services": [dict(row) for row in rows]})

    async def methods(self, request: Request) -> Reply:
        since = request.params.since(self.clock())
        service = request.params.text("service")
        rows = await asyncio.to_thread(self.store.methods, since, service)
        return json_reply({"methods": [dict(row) for row in rows]})

    async def timeseries(self, request: Request) -> Reply:
        query = request.params.series_query(self.clock())
        buckets = await asyncio.to_thread(self.store.timeseries, query)
        return json_reply(encode_series(query, buckets))

    async def dashboard(self, request: Request) -> Reply:
        """The HTML page reading the endpoints above (HTTP Basic: browsers send it again)."""
        return Reply(200, self.dashboard_page, HTML, DASHBOARD_HEADERS)

    async def dashboard_asset(self, request: Request) -> Reply:
        """One of `ASSETS`, looked up by name (never used as a path)."""
        data = self.assets.get(request.param)
        if data is None:
            raise RpcError(Code.NOT_FOUND, f"no dashboard file {request.param!r}")
        return Reply(200, data, ASSETS[request.param], ASSET_HEADERS)

    async def metrics(self, request: Request) -> Reply:
        return Reply(200, await asyncio.to_thread(self.monitor.metrics), PROMETHEUS)


def _generate_options(body: bytes) -> tuple[list[str] | None, bool]:
    """`{apps?: [str], force?: bool}`; an empty body is `{}`."""
    try:
        options = load_json(body) if body.strip() else {}
    except JsonSyntaxError as error:  # depth-limited, as every JSON body the server reads
        raise bad(f"body: invalid JSON: {error.problem}") from None
    if not isinstance(options, dict):
        raise bad("body: expected a JSON object {apps?: [app_label], force?: bool}")
    unknown = sorted(set(options) - {"apps", "force"})
    if unknown:
        raise bad(f"body: unknown fields {unknown}")
    apps = options.get("apps")
    force = options.get("force", False)
    if apps is not None and not (isinstance(apps, list) and all(isinstance(a, str) for a in apps)):
        raise bad("apps: expected a list of app labels")
    if not isinstance(force, bool):
        raise bad("force: expected true or false")
    return apps, force
