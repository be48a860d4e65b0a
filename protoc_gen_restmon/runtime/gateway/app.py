"""The REST gateway: an ASGI app serving gRPC methods over HTTP/JSON, in process or as a proxy."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from protoc_gen_restmon.runtime.apidocs import ApiDocument, ApiPages, page_paths
from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway.backends import (
    Answer,
    Backend,
    LocalBackend,
    UpstreamBackend,
)
from protoc_gen_restmon.runtime.gateway.http import (
    ERROR_FORMATS,
    EVENT_STREAM,
    JSON,
    NDJSON,
    ClientDisconnected,
    ErrorFormat,
    Exchange,
    Headers,
    Receive,
    Scope,
    Send,
    header,
    raw_path,
    read_body,
    respond,
    respond_error,
    serve_lifespan,
    start,
    stream_error_json,
    wants_event_stream,
)
from protoc_gen_restmon.runtime.gateway.observe import (
    GRPC_TYPES,
    NO_OBSERVER,
    CallInfo,
    Observation,
    Observer,
    given_request_id,
    new_request_id,
)
from protoc_gen_restmon.runtime.gateway.services import GeneratedPackage, implemented_services
from protoc_gen_restmon.runtime.gateway.upstream import (
    RpcMethod,
    Target,
    Upstream,
    build_call_options,
    forwarded_names,
)
from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from protoc_gen_restmon.runtime.jsoncodec.registry import DescriptorRegistry
from protoc_gen_restmon.runtime.jsoncodec.write import field_to_json, to_json
from protoc_gen_restmon.runtime.log_redaction import redact_header_logs
from protoc_gen_restmon.runtime.router import RouteMatch, Router
from protoc_gen_restmon.runtime.specs import Binding, ServiceSpec
from protoc_gen_restmon.runtime.status import Code, RpcError
from protoc_gen_restmon.runtime.transcode.request import HTTP_BODY, TranscodeOptions, build_request
from protoc_gen_restmon.runtime.transcode.system import may_ask_enum_numbers, wants_enum_numbers
from protoc_gen_restmon.runtime.transcode.values import parse_query

if TYPE_CHECKING:
    from protoc_gen_restmon.runtime.openapi import ApiInfo

logger = logging.getLogger("protoc_gen_restmon.gateway")

NDJSON_MEDIA_TYPES = frozenset({NDJSON.decode(), "application/jsonl"})


@dataclass(frozen=True, slots=True)
class UpstreamOptions:
    """Proxy mode (`Gateway(upstream=…)`): how the gateway reaches the upstream gRPC server."""

    # The timeout of a call without `Grpc-Timeout`, in seconds (None: none), and how long
    # connecting to the upstream may take before a 503.
    deadline: float | None = 30.0
    connect_timeout: float = 2.0
    # More request headers sent as metadata under their own (lower-case) name, beside
    # Authorization, X-Api-Key, X-Request-Id and X-Forwarded-For.
    forward_headers: tuple[str, ...] = ()
    # Seconds between HTTP/2 PINGs on the upstream connection (None: no pings); a ping
    # unanswered within connect_timeout drops the connection (upstream.keepalive_config).
    keepalive: float | None = None
    # None or False: plain HTTP/2; True: TLS verified against the system's CAs; an
    # `ssl.SSLContext`: a private CA or a client certificate (its ALPN must offer h2).
    tls: bool | ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    json: JsonOptions = field(default_factory=JsonOptions)
    transcode: TranscodeOptions = field(default_factory=TranscodeOptions)
    upstream: UpstreamOptions = field(default_factory=UpstreamOptions)  # proxy mode only
    # Error bodies (every error response, and a stream's final error line): "status", a bare
    # google.rpc.Status; "google", AIP-193's {"error": {"code", "message", "status", "details"}}.
    error_format: ErrorFormat = "status"
    # Decode multi-segment variables fully but for %2F (google.api.Http's flag) on every route,
    # also those generated without it; False keeps what each binding was generated with.
    fully_decode_reserved_expansion: bool = False
    # Where the gateway serves its OpenAPI document and the docs page (Swagger UI) showing
    # it, below its root_path; None turns one off (the docs page needs the document). Neither
    # may be a path an API route matches: building the gateway fails (ConfigError).
    openapi_path: str | None = "/openapi.json"
    docs_path: str | None = "/docs"
    # The document's info (title, version, description); None: build_document's default.
    openapi_info: ApiInfo | None = None

    def __post_init__(self) -> None:
        if self.error_format not in ERROR_FORMATS:
            choices = ", ".join(map(repr, ERROR_FORMATS))
            raise ConfigError(f"error_format: {self.error_format!r} is not one of {choices}")
        for name in ("openapi_path", "docs_path"):
            _check_page_path(name, getattr(self, name))
        if self.docs_path is not None and self.openapi_path is None:
            raise ConfigError(
                "docs_path: the docs page shows the OpenAPI document: "
                "give openapi_path too, or docs_path=None"
            )


@dataclass(frozen=True, slots=True)
class _Call:
    """What one HTTP request asks for, once routed."""

    method: RpcMethod
    match: RouteMatch
    scope: Scope
    headers: Headers  # response headers every answer carries (X-Request-Id)


class Gateway:
    """An ASGI app serving every HttpRule of its services, in process or in front of a server.

    - `Gateway(services=[MyBookstore()])`: each service is an instance of a betterproto `…Base`
      subclass; the gateway finds the route and monitor modules protoc-gen-restmon generated
      beside its base class.
    - `Gateway(upstream="localhost:50051", packages=[gen.bookstore.v1])`: every service of the
      generated packages (modules or dotted names), called on that gRPC server; how (deadline,
      TLS, keepalive, forwarded headers) is `GatewayOptions(upstream=UpstreamOptions(…))`.
    """

    def __init__(
        self,
        services: Sequence[Any] = (),
        *,
        upstream: str | None = None,
        packages: Sequence[ModuleType | str] = (),
        options: GatewayOptions | None = None,
        monitor: Observer | None = None,
    ):
        self.options = options or GatewayOptions()
        # What `$alt=json;enum-encoding=int` makes of the JSON options for one call.
        self._enum_numbers_json = replace(self.options.json, enums_as_ints=True)
        redact_header_logs()  # a proxy forwards x-api-key and authorization over HTTP/2
        self.monitor: Observer = monitor if monitor is not None else NO_OBSERVER
        self._forward = forwarded_names(self.options.upstream.forward_headers)
        self.registry = DescriptorRegistry()
        self._methods: dict[str, RpcMethod] = {}
        self._monitors: dict[str, ModuleType] = {}  # the services' monitor modules, by name
        bindings: list[Binding] = []
        self.backend: Backend
        if upstream is not None:
            if services:
                raise ConfigError("Gateway: give services (in process) or upstream, not both")
            target = Target.parse(upstream)
            self.backend = UpstreamBackend(
                Upstream(
                    target,
                    connect_timeout=self.options.upstream.connect_timeout,
                    tls=self.options.upstream.tls,
                    keepalive=self.options.upstream.keepalive,
                )
            )
            for package in packages:
                generated = GeneratedPackage.load(package)
                for spec in generated.monitor.SERVICES:
                    bindings.extend(self._add_service(generated, spec))
        else:
            local = self.backend = LocalBackend()
            for impl in services:
                for service in implemented_services(impl):
                    bindings.extend(self._add_service(service.generated, service.spec))
                    local.add(service)
        if self.options.fully_decode_reserved_expansion:
            bindings = [replace(b, fully_decode_reserved_expansion=True) for b in bindings]
        self.router = Router(bindings)
        self.api = ApiDocument(
            modules=list(self._monitors.values()),
            bindings=bindings,
            json_options=self.options.json,
            error_format=self.options.error_format,
            api_key_services=self._keyed_services(),
            info=self.options.openapi_info,
        )
        self._check_pages()
        self.pages = ApiPages(self.api, self.options.openapi_path, self.options.docs_path)

    def _add_service(self, generated: GeneratedPackage, service: ServiceSpec) -> list[Binding]:
        self.registry.add_module(generated.monitor)
        self._monitors.setdefault(generated.monitor.__name__, generated.monitor)
        for spec in service.methods:
            self._methods[spec.grpc_path] = RpcMethod(
                spec=spec,
                request_upb=self.registry.message_class(spec.request.proto_name),
                response_upb=self.registry.message_class(spec.response.proto_name),
            )
        routes: tuple[Binding, ...] = generated.routes.BINDINGS
        return [b for b in routes if b.service == service.name]

    def _keyed_services(self) -> frozenset[str]:
        """The services whose every method needs an API key (the monitor's `require_keys`)."""
        requires = getattr(self.monitor, "requires_key", None)
        if requires is None:
            return frozenset()
        services: dict[str, list[str]] = {}
        for path in self._methods:
            service, _, _ = path[1:].rpartition("/")
            services.setdefault(service, []).append(path)
        return frozenset(
            service
            for service, paths in services.items()
            if all(requires(service, path) for path in paths)
        )

    def _check_pages(self) -> None:
        """The document and docs paths must not be paths of API routes (any method)."""
        for path in page_paths(self.options.openapi_path, self.options.docs_path):
            try:
                binding = self.router.match("GET", path).binding
            except RpcError as err:
                if err.http_status != 405:
                    continue
                raise _page_clash(path, f"an API route has this path ({err.message})") from None
            raise _page_clash(path, f"the route {binding} matches it")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send, on_shutdown=self.backend.close)
            return
        if scope["type"] != "http":
            return
        request_id = _request_id(scope)
        headers = [(b"x-request-id", request_id.encode("latin-1"))]
        exchange = Exchange(receive, send)
        observation: Observation | None = None
        code, message = Code.OK, ""
        try:
            path = raw_path(scope)
            if path in self.pages:
                await self.pages.serve(scope, exchange.send, path, headers)
                return
            match = self.router.match(scope["method"], path)
            call = _Call(self._methods[match.binding.grpc_path], match, scope, headers)
            observation = self.monitor.begin(_call_info(scope, call.method, request_id))
            code, message = await exchange.run(self._serve(call, exchange, request_id))
        except RpcError as err:
            code, message = err.code, err.message
            await respond_error(exchange.send, err, headers, self.options.error_format)
        except ClientDisconnected:
            code, message = Code.CANCELLED, "the HTTP client went away"
        except asyncio.CancelledError:
            code, message = Code.CANCELLED, "the HTTP request was cancelled"
            raise
        except Exception:
            logger.exception("gateway error on %s %s", scope["method"], scope["path"])
            code, message = Code.INTERNAL, "internal error"
            internal = RpcError(Code.INTERNAL, "internal error")
            await respond_error(exchange.send, internal, headers, self.options.error_format)
        finally:
            if observation is not None:
                observation.finish(code, message)

    async def _serve(self, call: _Call, exchange: Exchange, request_id: str) -> tuple[Code, str]:
        options = build_call_options(
            call.scope, self.options.upstream.deadline, request_id, self._forward
        )
        json_options = self._response_json(call)
        requests = self._requests(call, exchange.receive)
        answer = await self.backend.call(call.method, requests, options)
        return await self._respond(call, answer, exchange.send, json_options)

    def _response_json(self, call: _Call) -> JsonOptions:
        """The gateway's JSON options, with enums as numbers when the query's system parameters
        ask for it (`$alt=json;enum-encoding=int`, what Google's REST clients send)."""
        query = bytes(call.scope.get("query_string", b""))
        if self.options.json.enums_as_ints or not may_ask_enum_numbers(query):
            return self.options.json
        try:
            params = parse_query(query)
        except RpcError:  # build_request answers it, after the body's own errors (§3's order)
            return self.options.json
        if wants_enum_numbers(params, call.method.request_upb.DESCRIPTOR):
            return self._enum_numbers_json
        return self.options.json

    async def _respond(
        self, call: _Call, answer: Answer, send: Send, json_options: JsonOptions
    ) -> tuple[Code, str]:
        """Send the answer; the call's final code and message (a stream may end in an error)."""
        try:
            if call.method.server_streaming:
                return await self._stream(call, answer, send, json_options)
            await self._unary(call, answer, send, json_options)
            return Code.OK, ""
        finally:
            await answer.close()

    async def _requests(self, call: _Call, receive: Receive) -> AsyncIterator[Message]:
        """The request message(s): one, or one per NDJSON body line."""
        options = self.options.transcode
        if not call.method.client_streaming:
            body = await read_body(receive, options.max_body_bytes)
            yield self._request(call, body)
            return
        async for line in _lines(receive, options.max_body_bytes):
            yield self._request(call, line)

    def _request(self, call: _Call, body: bytes) -> Message:
        scope, method = call.scope, call.method
        content_type = header(scope, b"content-type")
        if method.client_streaming:
            content_type = _line_content_type(content_type)
        message: Message = build_request(
            method.request_upb,
            call.match.binding,
            call.match.params,
            scope.get("query_string", b""),
            body,
            content_type,
            self.options.transcode,
            self.options.json,
        )
        return message

    async def _unary(
        self, call: _Call, answer: Answer, send: Send, json_options: JsonOptions
    ) -> None:
        # Read to the end: an upstream reports its status after the message.
        messages = [message async for message in answer.messages()]
        if len(messages) != 1:
            raise RpcError(Code.INTERNAL, f"the call answered {len(messages)} messages, not 1")
        message = messages[0]
        headers = [*call.headers, *answer.headers]
        if message.DESCRIPTOR.full_name == HTTP_BODY:
            body: Any = message
            content_type = (body.content_type or "application/octet-stream").encode("latin-1")
            await respond(send, 200, body.data, headers, content_type)
            return
        body = _json(message, call.match.binding, json_options)
        await respond(send, 200, body, headers)

    async def _stream(
        self, call: _Call, answer: Answer, send: Send, json_options: JsonOptions
    ) -> tuple[Code, str]:
        """NDJSON `{"result": …}` lines, or Server-Sent Events when the client asks for them.

        An error before the first message is an ordinary error response with its HTTP status;
        after it, a final `{"error": <Status>}` line ends the stream (in the gateway's error
        format: AIP-193's body is itself `{"error": {…}}`).
        """
        iterator = answer.messages()
        item = await anext(iterator, None)
        sse = wants_event_stream(header(call.scope, b"accept"))
        await start(send, 200, EVENT_STREAM if sse else NDJSON, [*call.headers, *answer.headers])
        code, message = Code.OK, ""
        try:
            while item is not None:
                result = _json(item, call.match.binding, json_options)
                await _send_chunk(send, b'{"result":' + result + b"}", sse)
                item = await anext(iterator, None)
        except RpcError as error:
            code, message = error.code, error.message
            await _send_chunk(send, stream_error_json(error, self.options.error_format), sse)
        except ClientDisconnected:
            raise
        except Exception:
            logger.exception("stream failed on %s", call.scope["path"])
            code, message = Code.INTERNAL, "internal error"
            internal = RpcError(code, message)
            await _send_chunk(send, stream_error_json(internal, self.options.error_format), sse)
        await send({"type": "http.response.body", "body": b""})
        return code, message


def _json(message: Any, binding: Binding, options: JsonOptions) -> bytes:
    if binding.response_body is None:
        return to_json(message, options)
    return field_to_json(message, binding.response_body.proto[0], options)


async def _send_chunk(send: Send, payload: bytes, sse: bool) -> None:
    body = b"data: " + payload + b"\n\n" if sse else payload + b"\n"
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _lines(receive: Receive, limit: int) -> AsyncIterator[bytes]:
    """Non-empty lines of a newline-delimited body, as they arrive; no line may exceed `limit`."""
    pending = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        more = message.get("more_body", False)
        pending += message.get("body", b"")
        *lines, pending = pending.split(b"\n")
        if len(pending) > limit:
            raise RpcError(
                Code.RESOURCE_EXHAUSTED, f"a body line exceeds {limit} bytes", http_status=413
            )
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _line_content_type(content_type: str | None) -> str | None:
    """A client-streaming body is newline-delimited JSON: each line is read as JSON.

    `application/x-ndjson` (what the gateway itself writes for streams) and `application/jsonl`
    name the whole body; for one line they mean `application/json`, parameters kept.
    """
    if content_type is None:
        return None
    media, separator, parameters = content_type.partition(";")
    if media.strip().lower() in NDJSON_MEDIA_TYPES:
        return JSON.decode() + separator + parameters
    return content_type


def _call_info(scope: Scope, method: RpcMethod, request_id: str) -> CallInfo:
    client = scope.get("client") or ("", 0)
    service = method.spec.grpc_path[1:].rpartition("/")[0]
    return CallInfo(
        service=service,
        method=method.spec.name,
        transport="http",
        request_id=request_id,
        peer=f"{client[0]}:{client[1]}" if client[0] else "",
        client_ip=str(client[0] or ""),
        user_agent=header(scope, b"user-agent") or "",
        http_method=str(scope["method"]),
        http_path=str(scope["path"]),
        metadata=tuple(
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in scope.get("headers", ())
        ),
        grpc_type=GRPC_TYPES[method.spec.cardinality],
    )


def _page_clash(path: str, why: str) -> ConfigError:
    return ConfigError(
        f"{path}: {why}; the gateway serves its OpenAPI document and docs page there: rename "
        "them (GatewayOptions openapi_path, docs_path) or turn them off (None)"
    )


def _check_page_path(name: str, path: str | None) -> None:
    if path is None:
        return
    if not path.startswith("/") or path == "/" or path.endswith("/") or "?" in path or "#" in path:
        raise ConfigError(
            f"{name}: {path!r} is not a path like /openapi.json (a leading /, no trailing /, "
            "no query)"
        )


def _request_id(scope: Scope) -> str:
    return given_request_id(header(scope, b"x-request-id")) or new_request_id()
