"""Monitoring a grpc.aio server: a ServerInterceptor wrapping each method handler's behaviour.

The behaviour wrapper (not `intercept_service` itself) begins the call, because only the
servicer context knows the peer and the deadline. Requests are passed through as they come:
client streams are never buffered.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]

from protoc_gen_restmon.runtime.gateway.observe import (
    GRPC_TYPES,
    CallInfo,
    Observation,
    given_request_id,
    new_request_id,
)
from protoc_gen_restmon.runtime.monitor.call import CallMonitor
from protoc_gen_restmon.runtime.monitor.ending import failed_call
from protoc_gen_restmon.runtime.specs import Cardinality
from protoc_gen_restmon.runtime.status import Code, RpcError

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Any]

STATUS_CODES: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


class MonitorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, monitor: CallMonitor) -> None:
        self._monitor = monitor
        # path -> (the server's handler, our wrapper of it): servers return the same handler
        # object for every call of a method, so each is wrapped once.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # unknown method: grpc answers UNIMPLEMENTED
        path: str = handler_call_details.method
        known = self._wrapped.get(path)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = _wrapped(handler, _Begin(self._monitor, path, _grpc_type(handler)))
        self._wrapped[path] = (handler, wrapped)
        return wrapped


# (request streaming, response streaming) -> cardinality
CARDINALITIES = {
    (False, False): Cardinality.UNARY_UNARY,
    (True, False): Cardinality.STREAM_UNARY,
    (False, True): Cardinality.UNARY_STREAM,
    (True, True): Cardinality.STREAM_STREAM,
}


def _grpc_type(handler: grpc.RpcMethodHandler) -> str:
    streaming = (bool(handler.request_streaming), bool(handler.response_streaming))
    return GRPC_TYPES[CARDINALITIES[streaming]]


class _Begin:
    """Begins one method's calls from their servicer context."""

    def __init__(self, monitor: CallMonitor, path: str, grpc_type: str) -> None:
        self.monitor = monitor
        self.service, _, self.method = path[1:].rpartition("/")
        self.grpc_type = grpc_type
        monitor.add_method(path, grpc_type)

    async def __call__(self, context: grpc.aio.ServicerContext) -> tuple[Observation, str]:
        """The call's observation and the request id to echo ("" when the monitor does not):
        it goes back in the trailing metadata, set now, so that a refusal and an `abort` carry
        it too (`abort` sends the trailers at once), and again at the end (`keep_request_id`)."""
        info = self._info(context)
        echoed = info.request_id if self.monitor.echo_grpc_request_id else ""
        if echoed:
            context.set_trailing_metadata((("x-request-id", echoed),))
        try:
            return self.monitor.begin(info, self.grpc_type), echoed
        except RpcError as err:
            await context.abort(STATUS_CODES[int(err.code)], err.message)
            raise  # not reached: abort raises

    def _info(self, context: grpc.aio.ServicerContext) -> CallInfo:
        metadata = tuple(
            (key, value)
            for key, value in context.invocation_metadata() or ()
            if isinstance(value, str)
        )
        peer = _peer_address(context.peer() or "")
        return CallInfo(
            service=self.service,
            method=self.method,
            transport="grpc",
            request_id=given_request_id(_first(metadata, "x-request-id")) or new_request_id(),
            peer=peer,
            client_ip=peer.rpartition(":")[0].strip("[]"),
            user_agent=_first(metadata, "user-agent"),
            metadata=metadata,
        )


def _first(metadata: tuple[tuple[str, str], ...], key: str) -> str:
    return next((value for name, value in metadata if name == key), "")


def _peer_address(peer: str) -> str:
    """grpc's "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000" -> "127.0.0.1:5000" / "[::1]:5000"."""
    scheme, _, address = peer.partition(":")
    return address if scheme in ("ipv4", "ipv6") else peer


def _wrapped(handler: grpc.RpcMethodHandler, begin: _Begin) -> grpc.RpcMethodHandler:
    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_unary(handler.unary_unary, begin), **options)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_unary(handler.stream_unary, begin), **options)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _streaming(handler.unary_stream, begin), **options
        )
    return grpc.stream_stream_rpc_method_handler(
        _streaming(handler.stream_stream, begin), **options
    )


def _unary(inner: Behaviour, begin: _Begin) -> Behaviour:
    async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> Any:
        observation, request_id = await begin(context)
        code, message = Code.OK, ""
        try:
            result = inner(request, context)
            if inspect.isawaitable(result):
                result = await result
            code, message = _set_status(context)
            return result
        except BaseException as err:
            code, message = _failure(err, context)
            raise
        finally:
            keep_request_id(context, request_id)
            observation.finish(code, message)

    return behaviour


def _streaming(inner: Behaviour, begin: _Begin) -> Behaviour:
    async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        observation, request_id = await begin(context)
        code, message = Code.OK, ""
        try:
            async for response in _responses(inner(request, context)):
                yield response
            code, message = _set_status(context)
        except BaseException as err:
            code, message = _failure(err, context)
            raise
        finally:
            keep_request_id(context, request_id)
            observation.finish(code, message)

    return behaviour


def keep_request_id(context: grpc.aio.ServicerContext, request_id: str) -> None:
    """x-request-id back among the trailing metadata, if the handler replaced them without it."""
    if not request_id:
        return
    current = tuple(context.trailing_metadata() or ())
    if all(name != "x-request-id" for name, _ in current):
        context.set_trailing_metadata((*current, ("x-request-id", request_id)))


async def _responses(result: Any) -> AsyncIterator[Any]:
    """What a response-streaming behaviour returned: an async or sync iterator, or a
    coroutine that writes with `context.write`."""
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    elif inspect.isawaitable(result):
        await result
    elif result is not None:
        for response in result:
            yield response


def _set_status(context: grpc.aio.ServicerContext) -> tuple[Code, str]:
    """The status a handler that returned normally set with `context.set_code`, if any."""
    status = context.code()
    if status is None:
        return Code.OK, ""
    value = status.value[0] if isinstance(status, grpc.StatusCode) else int(status)
    return Code(value), context.details() or ""


def _failure(err: BaseException, context: grpc.aio.ServicerContext) -> tuple[Code, str]:
    """The code and message of a call that raised `err`: the status `abort` sent, else as
    `ending.failed_call` classifies it."""
    if isinstance(err, grpc.aio.AbortError):
        return _set_status(context)
    if isinstance(err, asyncio.CancelledError) and context.done():
        return _set_status(context)  # cancelled after `abort` sent its status: the client has it
    return failed_call(err, context.time_remaining())
