"""The REST gateway: an ASGI app serving betterproto service implementations over HTTP/JSON."""

from __future__ import annotations

import dataclasses
import json
import logging
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpclib.exceptions

from protoc_gen_restmon.runtime.bridge import from_betterproto, to_betterproto
from protoc_gen_restmon.runtime.http import (
    EVENT_STREAM,
    JSON,
    NDJSON,
    ClientDisconnected,
    Headers,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    respond,
    respond_error,
    start,
    status_json,
    wants_event_stream,
)
from protoc_gen_restmon.runtime.json_mapping import JsonOptions
from protoc_gen_restmon.runtime.json_write import to_json
from protoc_gen_restmon.runtime.registry import DescriptorRegistry
from protoc_gen_restmon.runtime.router import RouteMatch, Router
from protoc_gen_restmon.runtime.services import ImplementedService, implemented_services
from protoc_gen_restmon.runtime.specs import Binding, Cardinality, MethodSpec
from protoc_gen_restmon.runtime.status import Code, RpcError
from protoc_gen_restmon.runtime.transcode import TranscodeOptions, build_request

logger = logging.getLogger("protoc_gen_restmon.gateway")

HTTP_BODY = "google.api.HttpBody"
NDJSON_MEDIA_TYPES = frozenset({NDJSON.decode(), "application/jsonl"})


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    json: JsonOptions = field(default_factory=JsonOptions)
    transcode: TranscodeOptions = field(default_factory=TranscodeOptions)


@dataclass(frozen=True, slots=True)
class LocalMethod:
    """One RPC of an in-process implementation, with every class the call path needs."""

    spec: MethodSpec
    handler: Any
    request_upb: Any
    response_upb: Any
    request_bp: Any
    response_bp: Any

    @property
    def client_streaming(self) -> bool:
        return self.spec.cardinality in (Cardinality.STREAM_UNARY, Cardinality.STREAM_STREAM)

    @property
    def server_streaming(self) -> bool:
        return self.spec.cardinality in (Cardinality.UNARY_STREAM, Cardinality.STREAM_STREAM)


@dataclass(frozen=True, slots=True)
class _Call:
    """What one HTTP request asks for, once routed."""

    method: LocalMethod
    match: RouteMatch
    scope: Scope
    headers: Headers  # response headers every answer carries (X-Request-Id)


class Gateway:
    """`Gateway(services=[MyBookstore()])`: an ASGI app serving every HttpRule of the services.

    Each service is an instance of a betterproto `…Base` subclass; the gateway finds the route
    and monitor modules that protoc-gen-restmon generated beside its base class.
    """

    def __init__(self, services: Sequence[Any] = (), *, options: GatewayOptions | None = None):
        self.options = options or GatewayOptions()
        # Request bodies are parsed by transcode: JsonOptions' parsing switch applies there too.
        self._transcode = self.options.transcode
        if self.options.json.ignore_unknown_fields:
            self._transcode = dataclasses.replace(self._transcode, ignore_unknown_fields=True)
        self.registry = DescriptorRegistry()
        self._methods: dict[str, LocalMethod] = {}
        bindings: list[Binding] = []
        for impl in services:
            for service in implemented_services(impl):
                bindings.extend(self._add_service(service))
        self.router = Router(bindings)

    def _add_service(self, service: ImplementedService) -> list[Binding]:
        generated = service.generated
        self.registry.add_module(generated.monitor)
        for spec in service.spec.methods:
            self._methods[spec.grpc_path] = LocalMethod(
                spec=spec,
                handler=service.handler(spec),
                request_upb=self.registry.message_class(spec.request.proto_name),
                response_upb=self.registry.message_class(spec.response.proto_name),
                request_bp=spec.request.resolve(generated.package),
                response_bp=spec.response.resolve(generated.package),
            )
        routes: tuple[Binding, ...] = generated.routes.BINDINGS
        return [b for b in routes if b.service == service.spec.name]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = [(b"x-request-id", _request_id(scope).encode("latin-1"))]
        try:
            match = self.router.match(scope["method"], _raw_path(scope))
            call = _Call(self._methods[match.binding.grpc_path], match, scope, headers)
            await self._serve(call, receive, send)
        except RpcError as err:
            await respond_error(send, err, headers)
        except ClientDisconnected:
            return
        except Exception:
            logger.exception("gateway error on %s %s", scope["method"], scope["path"])
            await respond_error(send, RpcError(Code.INTERNAL, "internal error"), headers)

    async def _serve(self, call: _Call, receive: Receive, send: Send) -> None:
        requests = self._requests(call, receive)
        method = call.method
        try:
            if method.client_streaming:
                result = method.handler(requests)
            else:
                result = method.handler(await anext(requests))
            if method.server_streaming:
                await self._stream(call, result, send)
            else:
                await self._unary(call, await result, send)
        except grpclib.exceptions.GRPCError as err:
            raise _from_grpc(err) from None

    async def _requests(self, call: _Call, receive: Receive) -> AsyncIterator[Any]:
        """The request message(s) as betterproto objects: one, or one per NDJSON body line."""
        options = self._transcode
        if not call.method.client_streaming:
            body = await read_body(receive, options.max_body_bytes)
            yield self._request(call, body)
            return
        async for line in _lines(receive, options.max_body_bytes):
            yield self._request(call, line)

    def _request(self, call: _Call, body: bytes) -> Any:
        scope, method = call.scope, call.method
        content_type = header(scope, b"content-type")
        if method.client_streaming:
            content_type = _line_content_type(content_type)
        message = build_request(
            method.request_upb,
            call.match.binding,
            call.match.params,
            scope.get("query_string", b""),
            body,
            content_type,
            self._transcode,
        )
        return to_betterproto(message, method.request_bp)

    async def _unary(self, call: _Call, response: Any, send: Send) -> None:
        message = from_betterproto(response, call.method.response_upb)
        if message.DESCRIPTOR.full_name == HTTP_BODY:
            content_type = (message.content_type or "application/octet-stream").encode("latin-1")
            await respond(send, 200, message.data, call.headers, content_type)
            return
        await respond(send, 200, self._json(message, call.match.binding), call.headers)

    async def _stream(self, call: _Call, results: AsyncIterator[Any], send: Send) -> None:
        """NDJSON `{"result": …}` lines, or Server-Sent Events when the client asks for them.

        An error before the first message is an ordinary error response with its HTTP status;
        after it, a final `{"error": <Status>}` line ends the stream.
        """
        iterator = aiter(results)
        first = await anext(iterator, None)
        sse = wants_event_stream(header(call.scope, b"accept"))
        await start(send, 200, EVENT_STREAM if sse else NDJSON, call.headers)
        item = first
        try:
            while item is not None:
                message = from_betterproto(item, call.method.response_upb)
                await _send_chunk(
                    send, b'{"result":' + self._json(message, call.match.binding) + b"}", sse
                )
                item = await anext(iterator, None)
        except grpclib.exceptions.GRPCError as err:
            error = _from_grpc(err)
            await _send_chunk(
                send, b'{"error":' + status_json(error.code, error.message) + b"}", sse
            )
        except Exception:
            logger.exception("stream failed on %s", call.scope["path"])
            await _send_chunk(
                send, b'{"error":' + status_json(Code.INTERNAL, "internal error") + b"}", sse
            )
        await send({"type": "http.response.body", "body": b""})

    def _json(self, message: Any, binding: Binding) -> bytes:
        if binding.response_body is None:
            return to_json(message, self.options.json)
        document = json.loads(to_json(message, self.options.json))
        key = (
            binding.response_body.proto[0]
            if self.options.json.use_proto_names
            else binding.response_body.json[0]
        )
        return json.dumps(document.get(key), separators=(",", ":"), ensure_ascii=False).encode()


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


def _from_grpc(err: grpclib.exceptions.GRPCError) -> RpcError:
    code = Code(err.status.value)
    return RpcError(code, err.message or code.name)


def _request_id(scope: Scope) -> str:
    given = header(scope, b"x-request-id")
    if given and len(given) <= 128 and given.isprintable():
        return given
    return str(uuid.uuid4())


def _raw_path(scope: Scope) -> str:
    """The request path below the app's mount point, still percent-encoded.

    Servers and routers put the whole path in `path` and `raw_path`, and the mount point
    (decoded) in `root_path` (ASGI spec; uvicorn `--root-path`, Starlette `Mount("/api", …)`):
    `/api/v1/shelves/a%2Fb` under `root_path="/api"` is `/v1/shelves/a%2Fb`. A path that does
    not start with `root_path` (a server that already removed it) is taken as it is.
    """
    root = str(scope.get("root_path", ""))
    raw = scope.get("raw_path")
    if not raw:
        return _below(str(scope["path"]), root, str)
    return _below(bytes(raw).split(b"?", 1)[0].decode("latin-1"), root, _percent_decode)


def _below(path: str, root: str, decode: Callable[[str], str]) -> str:
    """`path` without its leading segments that `decode` to `root`; unchanged when none do."""
    if not root or root == "/":
        return path
    # An escape is 3 characters for 1: the prefix is `len(root)` to `3 * len(root)` long.
    for end in range(len(root), min(len(path), 3 * len(root)) + 1):
        if (end == len(path) or path[end] == "/") and decode(path[:end]) == root:
            return path[end:] or "/"
    return path


def _percent_decode(raw: str) -> str:
    return urllib.parse.unquote(raw.encode("latin-1").decode("utf-8", "replace"))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
