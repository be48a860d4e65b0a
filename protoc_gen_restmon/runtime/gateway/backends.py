"""Where the gateway sends a call: betterproto implementations in process, or an upstream server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpclib.exceptions
from google.protobuf.message import Message

from protoc_gen_restmon.runtime.gateway.http import Headers
from protoc_gen_restmon.runtime.gateway.loop_upstream import LoopUpstream
from protoc_gen_restmon.runtime.gateway.services import ImplementedService
from protoc_gen_restmon.runtime.gateway.upstream import CallOptions, RpcMethod, Upstream
from protoc_gen_restmon.runtime.jsoncodec.bridge import from_betterproto, to_betterproto
from protoc_gen_restmon.runtime.specs import Cardinality
from protoc_gen_restmon.runtime.status import Code, RpcError, detail_json

CLIENT_STREAMING = frozenset({Cardinality.STREAM_UNARY, Cardinality.STREAM_STREAM})
SERVER_STREAMING = frozenset({Cardinality.UNARY_STREAM, Cardinality.STREAM_STREAM})


class Answer(Protocol):
    """A call's response: headers to add, the response message(s), and `close()` when done."""

    headers: Headers

    def messages(self) -> AsyncIterator[Message]: ...

    async def close(self) -> None: ...


class Backend(Protocol):
    """Where the gateway sends a call: in-process implementations or an upstream gRPC server."""

    async def call(
        self, method: RpcMethod, requests: AsyncIterator[Message], options: CallOptions
    ) -> Answer: ...

    async def close(self) -> None: ...


class Single(AsyncIterator[Message]):
    """An async iterator over one message: a unary request or response.

    Cheaper than an async generator, which the event loop registers (in a WeakSet, for
    `shutdown_asyncgens`) the first time it runs.
    """

    __slots__ = ("_message",)

    def __init__(self, message: Message) -> None:
        self._message: Message | None = message

    async def __anext__(self) -> Message:
        message = self._message
        if message is None:
            raise StopAsyncIteration
        self._message = None
        return message

    async def aclose(self) -> None:
        self._message = None

    def take(self) -> Message:
        """`await anext(single)` and `aclose()` at once, without their two coroutines."""
        message, self._message = self._message, None
        if message is None:
            raise StopAsyncIteration
        return message


@dataclass(frozen=True, slots=True)
class LocalHandler:
    """A betterproto implementation's handler of one RPC, with its betterproto classes."""

    handler: Any
    request_bp: Any
    response_bp: Any
    client_streaming: bool
    server_streaming: bool


@dataclass(slots=True)
class LocalAnswer:
    """The result of an in-process handler: one response, or its async iterator."""

    result: Any
    response_upb: type[Message]
    server_streaming: bool
    headers: Headers = field(default_factory=list)

    def messages(self) -> AsyncIterator[Message]:
        if not self.server_streaming:
            return Single(from_betterproto(self.result, self.response_upb))
        return self._stream()

    async def _stream(self) -> AsyncIterator[Message]:
        iterator = aiter(self.result)
        while True:
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                return
            except grpclib.exceptions.GRPCError as err:
                raise from_grpc(err) from None
            yield from_betterproto(item, self.response_upb)

    async def close(self) -> None:
        return None


class LocalBackend:
    """Calls betterproto service implementations in process (upb <-> betterproto at the edge).

    The call options are not used: handlers see neither metadata nor a deadline.
    """

    def __init__(self) -> None:
        self.handlers: dict[str, LocalHandler] = {}

    def add(self, service: ImplementedService) -> None:
        package = service.generated.package
        for spec in service.spec.methods:
            self.handlers[spec.grpc_path] = LocalHandler(
                service.handler(spec),
                spec.request.resolve(package),
                spec.response.resolve(package),
                client_streaming=spec.cardinality in CLIENT_STREAMING,
                server_streaming=spec.cardinality in SERVER_STREAMING,
            )

    async def call(
        self, method: RpcMethod, requests: AsyncIterator[Message], options: CallOptions
    ) -> Answer:
        local = self.handlers[method.spec.grpc_path]
        try:
            if local.client_streaming:
                result = local.handler(to_betterproto(m, local.request_bp) async for m in requests)
            else:
                result = local.handler(to_betterproto(await _only(requests), local.request_bp))
            if not local.server_streaming:
                result = await result
        except grpclib.exceptions.GRPCError as err:
            raise from_grpc(err) from None
        return LocalAnswer(result, method.response_upb, local.server_streaming)

    async def close(self) -> None:
        return None


class UpstreamBackend:
    """Calls an upstream gRPC server: upb messages as wire bytes, over one grpcio channel
    (`Upstream`) or one HTTP/2 connection on the event loop (`LoopUpstream`)."""

    def __init__(self, upstream: Upstream | LoopUpstream) -> None:
        self.upstream = upstream

    async def call(
        self, method: RpcMethod, requests: AsyncIterator[Message], options: CallOptions
    ) -> Answer:
        if method.client_streaming:
            return await self.upstream.call(method, requests, options)
        # A bad request is a 400 before any connection.
        return await self.upstream.call(method, await _only(requests), options)

    async def close(self) -> None:
        await self.upstream.close()


async def _only(requests: AsyncIterator[Message]) -> Message:
    """The one request of a unary call; the generator is closed here, not left to the event
    loop's finalizer (which would schedule a task per request)."""
    if isinstance(requests, Single):  # what the gateway makes of a unary request
        return requests.take()
    message = await anext(requests)
    aclose = getattr(requests, "aclose", None)
    if aclose is not None:
        await aclose()
    return message


def from_grpc(err: grpclib.exceptions.GRPCError) -> RpcError:
    """The grpclib status an in-process handler raised as RpcError; its details are google.rpc
    messages (or already JSON)."""
    code = Code(err.status.value)
    details = tuple(_detail(detail) for detail in err.details or ())
    return RpcError(code, err.message or code.name, details=details)


def _detail(detail: Any) -> Any:
    return detail_json(detail) if isinstance(detail, Message) else detail
