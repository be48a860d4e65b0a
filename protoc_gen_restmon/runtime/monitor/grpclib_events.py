"""Monitoring a grpclib server: through its RecvRequest event, or by wrapping its handlers.

`RecvRequest` lets a listener replace `method_func`, the coroutine that serves the stream. Our
replacement wraps the original one: it sees the whole call (its end, the handler's exception,
a cancellation or the deadline) without touching the messages, so client streams flow through
unbuffered. This composes with other listeners (ours wraps whatever `method_func` it is given).

grpclib's event machinery has a price of its own on every call: it builds a `RecvRequest`
(seven keyword arguments through a generic `__init__`) and awaits each listener. With
`events=False`, `attach` wraps each handler of the server's method table once instead, and
grpclib keeps its no-listener fast path. The wrapper does the same work; the caveat is that a
RecvRequest listener that replaces `method_func` without calling the one it was given now
replaces the monitored handler too (such a listener also bypasses every other wrapper).
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any, Protocol

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
    from grpclib.metadata import _Metadata
    from grpclib.protocol import Peer
    from grpclib.server import Server, Stream

    from protoc_gen_restmon.runtime.monitor.monitor import Monitor

GRPC_TYPES: dict[GrpclibCardinality, str] = {
    GrpclibCardinality.UNARY_UNARY: "unary",
    GrpclibCardinality.STREAM_UNARY: "client_stream",
    GrpclibCardinality.UNARY_STREAM: "server_stream",
    GrpclibCardinality.STREAM_STREAM: "bidi_stream",
}


class Arrival(Protocol):
    """What a RecvRequest event and a server Stream both tell of a call as it arrives."""

    @property
    def metadata(self) -> _Metadata | None: ...
    @property
    def peer(self) -> Peer: ...
    @property
    def user_agent(self) -> str | None: ...


def attach(monitor: Monitor, server: Server, *, events: bool = True) -> None:
    """Record every call `server` serves; refuse those the monitor refuses, before the handler.

    `events=True`: through a RecvRequest listener; `events=False`: by wrapping the handlers
    (see the module docstring)."""
    mapping: dict[str, Any] = getattr(server, "_mapping", {})
    names: dict[str, tuple[str, str]] = {}  # "/pkg.Service/Method" -> ("pkg.Service", "Method")
    for path, handler in mapping.items():
        monitor.add_method(path, GRPC_TYPES[handler.cardinality])
        names[path] = _split(path)
    if not events:
        for path, handler in mapping.items():
            mapping[path] = handler._replace(func=_monitored(monitor, path, handler.func))
        return

    async def on_request(event: RecvRequest) -> None:
        path: str = event.method_name
        service, method = names.get(path) or _split(path)
        try:
            observation = monitor.begin(call_info(event, service, method))
        except RpcError as err:
            event.method_func = _refuse(err)
            return
        event.method_func = functools.partial(_observe, event.method_func, observation)

    listen(server, RecvRequest, on_request)


def _split(path: str) -> tuple[str, str]:
    service, _, method = path[1:].rpartition("/")
    return service, method


def call_info(arrival: Arrival, service: str, method: str) -> CallInfo:
    """What the monitor needs of a call; positional arguments, as this runs per call."""
    host, port = arrival.peer.addr() or ("", 0)
    metadata = arrival.metadata
    return CallInfo(
        service,
        method,
        "grpc",
        str(metadata.get("x-request-id", "")) if metadata else "",
        f"{host}:{port}" if host else "",  # peer
        str(host),  # client_ip
        arrival.user_agent or "",
        "",  # http_method
        "",  # http_path
        # Text metadata only: -bin values are bytes, of no use to key checks or hooks.
        tuple((k, v) for k, v in metadata.items() if isinstance(v, str)) if metadata else (),
    )


def _refuse(err: RpcError) -> MethodFunc:
    async def refuse(stream: Stream[Any, Any]) -> None:
        raise _grpc_error(err)

    return refuse


def _grpc_error(err: RpcError) -> GRPCError:
    return GRPCError(Status(int(err.code)), err.message)


def _monitored(monitor: Monitor, path: str, inner: MethodFunc) -> MethodFunc:
    """`inner` observed: the handler that `events=False` puts in the server's method table.
    The body of `_observe` is repeated here: one coroutine less per call."""
    service, method = _split(path)

    async def monitored(stream: Stream[Any, Any]) -> None:
        try:
            observation = monitor.begin(call_info(stream, service, method))
        except RpcError as err:
            raise _grpc_error(err) from None
        code, message = Code.OK, ""
        try:
            await inner(stream)
        except BaseException as err:
            code, message = _ending(err, stream.deadline)
            raise
        finally:
            observation.finish(code, message)

    return monitored


async def _observe(inner: MethodFunc, observation: Observation, stream: Stream[Any, Any]) -> None:
    """Serve the call with `inner`, then finish the observation with how it ended."""
    code, message = Code.OK, ""
    try:
        await inner(stream)
    except BaseException as err:
        code, message = _ending(err, stream.deadline)
        raise
    finally:
        observation.finish(code, message)


def _ending(err: BaseException, deadline: Deadline | None) -> tuple[Code, str]:
    """The code and message of a call that raised `err`."""
    if isinstance(err, GRPCError):
        return Code(err.status.value), err.message or ""
    if isinstance(err, asyncio.CancelledError):
        return cancellation(deadline)
    # grpclib answers UNKNOWN "Internal Server Error"; the record keeps the cause.
    return Code.UNKNOWN, f"{type(err).__name__}: {err}"


def cancellation(deadline: Deadline | None) -> tuple[Code, str]:
    return cancelled_call(deadline.time_remaining() if deadline is not None else None)
