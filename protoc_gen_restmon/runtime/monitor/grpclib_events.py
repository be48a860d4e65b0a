"""Monitoring a grpclib server through its RecvRequest event.

`RecvRequest` lets a listener replace `method_func`, the coroutine that serves the stream. Our
replacement wraps the original one: it sees the whole call (its end, the handler's exception,
a cancellation or the deadline) without touching the messages, so client streams flow through
unbuffered.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from grpclib import GRPCError
from grpclib.const import Cardinality as GrpclibCardinality
from grpclib.const import Status
from grpclib.events import RecvRequest, listen
from grpclib.metadata import Deadline

from protoc_gen_restmon.runtime.monitor.monitor import cancelled_call
from protoc_gen_restmon.runtime.observe import CallInfo, Observation
from protoc_gen_restmon.runtime.status import Code, RpcError

if TYPE_CHECKING:
    from grpclib._typing import IServerMethodFunc as MethodFunc
    from grpclib.server import Server, Stream

    from protoc_gen_restmon.runtime.monitor.monitor import Monitor

GRPC_TYPES: dict[GrpclibCardinality, str] = {
    GrpclibCardinality.UNARY_UNARY: "unary",
    GrpclibCardinality.STREAM_UNARY: "client_stream",
    GrpclibCardinality.UNARY_STREAM: "server_stream",
    GrpclibCardinality.STREAM_STREAM: "bidi_stream",
}


def attach(monitor: Monitor, server: Server) -> None:
    """Record every call `server` serves; refuse those the monitor refuses, before the handler."""
    mapping: dict[str, Any] = getattr(server, "_mapping", {})
    for path, handler in mapping.items():
        monitor.add_method(path, GRPC_TYPES[handler.cardinality])

    async def on_request(event: RecvRequest) -> None:
        info = call_info(event)
        try:
            observation = monitor.begin(info)
        except RpcError as err:
            event.method_func = _refuse(err)
            return
        event.method_func = _observed(event.method_func, observation, event.deadline)

    listen(server, RecvRequest, on_request)


def call_info(event: RecvRequest) -> CallInfo:
    method_name: str = event.method_name
    service, _, method = method_name[1:].rpartition("/")
    address = event.peer.addr()
    host, port = (str(address[0]), address[1]) if address else ("", 0)
    metadata = tuple((k, v) for k, v in event.metadata.items() if isinstance(v, str))
    return CallInfo(
        service=service,
        method=method,
        transport="grpc",
        request_id=str(event.metadata.get("x-request-id", "")),
        peer=f"{host}:{port}" if host else "",
        client_ip=host,
        user_agent=event.user_agent or "",
        metadata=metadata,
    )


def _refuse(err: RpcError) -> MethodFunc:
    async def refuse(stream: Stream[Any, Any]) -> None:
        raise GRPCError(Status(int(err.code)), err.message)

    return refuse


def _observed(inner: MethodFunc, observation: Observation, deadline: Deadline | None) -> MethodFunc:
    async def observed(stream: Stream[Any, Any]) -> None:
        code, message = Code.OK, ""
        try:
            await inner(stream)
        except GRPCError as err:
            code, message = Code(err.status.value), err.message or ""
            raise
        except asyncio.CancelledError:
            code, message = cancellation(deadline)
            raise
        except Exception as err:
            # grpclib answers UNKNOWN "Internal Server Error"; the record keeps the cause.
            code, message = Code.UNKNOWN, f"{type(err).__name__}: {err}"
            raise
        finally:
            observation.finish(code, message)

    return observed


def cancellation(deadline: Deadline | None) -> tuple[Code, str]:
    return cancelled_call(deadline.time_remaining() if deadline is not None else None)
