"""The REST gateway: an ASGI app serving gRPC methods over HTTP/JSON, in process or as a proxy."""

from __future__ import annotations

import asyncio
import logging
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
    Single,
    UpstreamBackend,
)
from protoc_gen_restmon.runtime.gateway.http import (
    ERROR_FORMATS,
    EVENT_STREAM,
    JSON,
    NDJSON,
    ON_DISCONNECT,
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
from protoc_gen_restmon.runtime.gateway.loop_upstream import LoopUpstream
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
    METADATA_PREFIX,
    OPTION_HEADERS,
    CallOptions,
    RpcMethod,
    Target,
    Upstream,
    UpstreamOptions,
    build_call_options,
    chosen_transport,
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
# What an in-process call gets for call options: its handler sees neither metadata nor deadline.
NO_OPTIONS = CallOptions()


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
class _Method:
    """An RPC as the gateway serves it, with what every request asks of it worked out once."""

    rpc: RpcMethod
    client_streaming: bool
    server_streaming: bool
    http_body: bool  # the response is a google.api.HttpBody: its bytes, not JSON

    @classmethod
    def of(cls, rpc: RpcMethod) -> _Method:
        http_body = rpc.response_upb.DESCRIPTOR.full_name == HTTP_BODY
        return cls(rpc, rpc.client_streaming, rpc.server_streaming, http_body)


@dataclass(slots=True)
class _Call:
    """What one HTTP request asks for, once routed (not frozen: built on every request)."""

    method: _Method
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
        self._methods: dict[str, _Method] = {}
        self._monitors: dict[str, ModuleType] = {}  # the services' monitor modules, by name
        bindings: list[Binding] = []
        self.backend: Backend
        self._local = upstream is None
        if upstream is not None:
            if services:
                raise ConfigError("Gateway: give services (in process) or upstream, not both")
            target = Target.parse(upstream)
            for package in packages:
                generated = GeneratedPackage.load(package)
                for spec in generated.monitor.SERVICES:
                    bindings.extend(self._add_service(generated, spec))
            methods = [method.rpc for method in self._methods.values()]
            self.backend = UpstreamBackend(_upstream(target, self.options.upstream, methods))
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
            rpc = RpcMethod(
                spec=spec,
                request_upb=self.registry.message_class(spec.request.proto_name),
                response_upb=self.registry.message_class(spec.response.proto_name),
            )
            self._methods[spec.grpc_path] = _Method.of(rpc)
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
        extensions = scope.get("extensions")
        exchange = Exchange(receive, send, extensions.get(ON_DISCONNECT) if extensions else None)
        observation: Observation | None = None
        code, message = Code.OK, ""
        try:
            path = raw_path(scope)
            if path in self.pages:
                await self.pages.serve(scope, exchange.send, path, headers)
                return
            match = self.router.match(scope["method"], path)
            call = _Call(self._methods[match.binding.grpc_path], match, scope, headers)
            if self.monitor is not NO_OBSERVER:  # a CallInfo only for an observer
                observation = self.monitor.begin(_call_info(scope, call.method.rpc, request_id))
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
        options = self._call_options(call.scope, request_id)
        json_options = self._response_json(call)
        requests: AsyncIterator[Message]
        if call.method.client_streaming:
            requests = self._stream_requests(call, exchange.receive)
        else:  # a bad request is a 400 before the backend is called (before any connection)
            body = await read_body(exchange.receive, self.options.transcode.max_body_bytes)
            requests = Single(self._request(call, body))
        answer = await self.backend.call(call.method.rpc, requests, options)
        return await self._respond(call, answer, exchange.send, json_options)

    def _call_options(self, scope: Scope, request_id: str) -> CallOptions:
        """The upstream call's metadata and deadline (docs/http-transcoding.md §6).

        In process, the handlers see neither: only the 400s `build_call_options` answers for
        headers that cannot be metadata matter, and requests without such headers skip it.
        """
        if self._local and not _may_refuse(scope, self._forward):
            return NO_OPTIONS
        return build_call_options(scope, self.options.upstream.deadline, request_id, self._forward)

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
        if wants_enum_numbers(params, call.method.rpc.request_upb.DESCRIPTOR):
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

    async def _stream_requests(self, call: _Call, receive: Receive) -> AsyncIterator[Message]:
        """The request messages of a client stream: one per NDJSON body line."""
        async for line in _lines(receive, self.options.transcode.max_body_bytes):
            yield self._request(call, line)

    def _request(self, call: _Call, body: bytes) -> Message:
        scope, method = call.scope, call.method
        content_type = header(scope, b"content-type")
        if method.client_streaming:
            content_type = _line_content_type(content_type)
        message: Message = build_request(
            method.rpc.request_upb,
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
        # Read to the end: an upstream reports its status after the message. (A loop, not a
        # list comprehension: that is one more coroutine per request.)
        messages: list[Message] = []
        async for item in answer.messages():
            messages.append(item)
        if len(messages) != 1:
            raise RpcError(Code.INTERNAL, f"the call answered {len(messages)} messages, not 1")
        message = messages[0]
        headers = [*call.headers, *answer.headers] if answer.headers else call.headers
        if call.method.http_body:
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


def _may_refuse(scope: Scope, forward: frozenset[bytes]) -> bool:
    """Whether `build_call_options` could refuse this request (a 400): it has a header that
    becomes metadata or the deadline, or a client address that is not printable ASCII."""
    for name, _ in scope["headers"]:
        key = bytes(name).lower()
        if key in OPTION_HEADERS or key in forward or key.startswith(METADATA_PREFIX):
            return True
    client = scope.get("client")
    host = str(client[0]) if client and client[0] else ""
    return not (host.isascii() and host.isprintable())


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


def _upstream(
    target: Target, options: UpstreamOptions, methods: list[RpcMethod]
) -> Upstream | LoopUpstream:
    """The upstream client of the transport `options` choose (`chosen_transport`)."""
    if chosen_transport(target, options) == "asyncio":
        return LoopUpstream(target, options)
    return Upstream(target, options, methods)
