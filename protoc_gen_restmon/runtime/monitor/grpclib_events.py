"""Monitoring a grpclib server: by wrapping its handlers, or through its RecvRequest event.

Either way our code runs around the handler: it sees the whole call (its end, the handler's
exception, a cancellation or the deadline) without touching the messages, so client streams
flow through unbuffered.

By default `attach` wraps each handler of the server's method table once. With `events=True`
it listens to grpclib's `RecvRequest` event instead and replaces the event's `method_func` with
the same wrapper around the one it is given, which composes with other listeners. That has a
price of its own on every call: grpclib then builds a `RecvRequest` (seven keyword arguments
through a generic `__init__`) and awaits each listener, 4 to 16 µs per call measured on a 2-CPU VM
(`benchmarks/bench_monitor_overhead.py`), most of the monitor's budget. The catch of wrapping:
a RecvRequest listener of yours that replaces `method_func` without calling the one it was given
also replaces the monitored handler (such a listener bypasses every other wrapper too).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from grpclib import GRPCError
from grpclib.const import Status
from grpclib.events import RecvRequest, listen
from grpclib.metadata import Deadline

from protoc_gen_restmon.runtime.gateway.observe import (
    GRPC_TYPES,
    CallInfo,
    given_request_id,
    new_request_id,
)
from protoc_gen_restmon.runtime.grpclib_private import (
    Metadata,
    MetadataLike,
    MethodFunc,
    method_table,
)
from protoc_gen_restmon.runtime.monitor.call import CallMonitor, MethodState, MonitoredCall
from protoc_gen_restmon.runtime.monitor.ending import failed_call
from protoc_gen_restmon.runtime.monitor.series import FOLD_AT
from protoc_gen_restmon.runtime.specs import Cardinality
from protoc_gen_restmon.runtime.status import Code, RpcError

if TYPE_CHECKING:
    from grpclib.server import Server, Stream


def attach(monitor: CallMonitor, server: Server, *, events: bool = False) -> None:
    """Record every call `server` serves; refuse those the monitor refuses, before the handler.

    `events=False`: by wrapping the handlers; `events=True`: through a RecvRequest listener
    that puts the same wrapper around the handler it is given (see the module docstring)."""
    mapping = method_table(server)
    states: dict[str, MethodState] = {}  # by "/pkg.Service/Method"
    wrapped: dict[MethodFunc, MethodFunc] = {}  # the server's handlers, monitored
    for path, handler in mapping.items():
        grpc_type = GRPC_TYPES[Cardinality[handler.cardinality.name]]  # grpclib's: same names
        monitor.add_method(path, grpc_type)
        states[path] = monitor.method_state(*_split(path), grpc_type)
        wrapped[handler.func] = wrap_handler(monitor, states[path], handler.func)
    if not events:
        for path, handler in mapping.items():
            mapping[path] = handler._replace(func=wrapped[handler.func])
        return

    async def on_request(event: RecvRequest) -> None:
        inner = event.method_func
        found = wrapped.get(inner)
        if found is None:  # another listener replaced the handler: wrap its replacement
            path: str = event.method_name
            state = states.get(path) or monitor.method_state(*_split(path))
            found = wrap_handler(monitor, state, inner)
        event.method_func = found

    listen(server, RecvRequest, on_request)


def _split(path: str) -> tuple[str, str]:
    service, _, method = path[1:].rpartition("/")
    return service, method


# What a call's record needs of its arrival, taken on the event loop by `arrive`: its
# metadata (not changed once received), user agent, peer address and, when it is echoed, its
# request id ("" otherwise: the writer thread works it out). The address is read then, not by the
# writer thread: by then the connection may be closed, and its socket's number reused.
Arrived = tuple["Metadata | None", "str | None", "tuple[str, int] | None", str]


def arrive(stream: Stream[Any, Any]) -> Arrived:
    """What the record needs of the call's arrival."""
    return (stream.metadata, stream.user_agent, stream.peer.addr(), "")


def arrive_echoing(stream: Stream[Any, Any]) -> Arrived:
    """`arrive`, and the request id worked out now and echoed (`echo_grpc_request_id`)."""
    metadata = stream.metadata
    request_id = given_request_id(metadata.get("x-request-id")) if metadata else None
    request_id = request_id or new_request_id()
    echo_request_id(stream, request_id)
    return (metadata, stream.user_agent, stream.peer.addr(), request_id)


def echo_request_id(stream: Stream[Any, Any], request_id: str) -> None:
    """Sends `request_id` back as `x-request-id` in the call's trailing metadata, which every
    ending sends (an answer, an error, a refused key; not a client that is gone). Trailers
    rather than initial metadata: a call that fails before answering sends no initial metadata,
    and grpc.aio's interceptor can only reach the trailers (grpc_aio.py)."""
    send = stream.send_trailing_metadata

    async def send_trailing_metadata(
        *, metadata: MetadataLike | None = None, **ending: Any
    ) -> None:
        await send(metadata=with_request_id(metadata, request_id), **ending)

    # The stream calls its own send_trailing_metadata, from the handler or when it exits.
    stream.send_trailing_metadata = send_trailing_metadata  # type: ignore[method-assign]


def with_request_id(metadata: MetadataLike | None, request_id: str) -> MetadataLike:
    """`metadata` and x-request-id, unless the handler set an x-request-id of its own."""
    if not metadata:
        return (("x-request-id", request_id),)
    pairs = list(metadata.items() if isinstance(metadata, Mapping) else metadata)
    if all(name != "x-request-id" for name, _ in pairs):
        pairs.append(("x-request-id", request_id))
    return pairs


def describe(state: MethodState, arrived: Arrived) -> CallInfo:
    """The CallInfo of a call from what `arrive` took; run by the writer thread."""
    metadata, user_agent, addr, request_id = arrived
    if not request_id and metadata:
        request_id = given_request_id(metadata.get("x-request-id")) or ""
    host, port = addr or ("", 0)
    return CallInfo(
        state.service,
        state.method,
        "grpc",
        request_id,  # "": a new one, drawn with the call id (call.py)
        f"{host}:{port}" if host else "",  # peer
        str(host),  # client_ip
        user_agent or "",
        "",  # http_method
        "",  # http_path
        # Text metadata only: -bin values are bytes, of no use to key checks or hooks.
        tuple((k, v) for k, v in metadata.items() if isinstance(v, str)) if metadata else (),
    )


def _grpc_error(err: RpcError) -> GRPCError:
    return GRPCError(Status(int(err.code)), err.message)


def wrap_handler(monitor: CallMonitor, state: MethodState, inner: MethodFunc) -> MethodFunc:
    """`inner` observed: the handler `attach` puts in the server's method table (or, with
    `events=True`, in each RecvRequest event)."""
    if state.admits:
        return _checked(monitor, state, inner)
    return _quick(monitor, state, inner)


def _checked(monitor: CallMonitor, state: MethodState, inner: MethodFunc) -> MethodFunc:
    """A method with a key check or a hook: the call is begun (and may be refused) before
    `inner` runs, and finished with how `inner` ended."""
    begin = monitor.begin_deferred
    arrival_of = arrive_echoing if monitor.echo_grpc_request_id else arrive

    async def monitored(stream: Stream[Any, Any]) -> None:
        try:
            observation = begin(state, arrival_of(stream), describe)
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


def _quick(monitor: CallMonitor, state: MethodState, inner: MethodFunc) -> MethodFunc:
    """Every other method: the same records and metrics as `_checked`, at a third of its cost
    on the event loop (benchmarks/bench_monitor_overhead.py). The call is the same
    MonitoredCall, queued with no other Python call of ours: in a real server `begin_deferred`
    and `finish` alone cost ~8 µs per call, cold as the code is there. `finish`'s handshake,
    `submit` and `MethodSeries.start`/`finish` are inlined."""
    writer, series, clock = monitor.writer, state.series, time.perf_counter
    records, events = writer.records, series.events
    arrival_of = arrive_echoing if monitor.echo_grpc_request_id else arrive
    new_call = MonitoredCall

    async def monitored(stream: Stream[Any, Any]) -> None:
        arrival = arrival_of(stream)
        started = clock()
        call = new_call(state, arrival, describe, started)
        events.append(None)  # started
        depth = len(records)
        if depth < writer.queue_size:
            records.append(call)
            if depth + 1 >= writer.batch_size:
                writer.wake()
        else:
            writer.refused()
        code, message = Code.OK, ""
        try:
            await inner(stream)
        except BaseException as err:
            code, message = _ending(err, stream.deadline)
            raise
        finally:
            ended = clock()
            call.ended = (code, message, ended)  # MonitoredCall.finish's handshake
            if call.taken:  # its pending record is written: queue it again
                writer.submit(call)
            events.append((code, ended - started))  # handled
            if len(events) >= FOLD_AT:
                series.fold()

    return monitored


def _ending(err: BaseException, deadline: Deadline | None) -> tuple[Code, str]:
    """The code and message of a call that raised `err`: its GRPCError's status, else as
    `ending.failed_call` classifies it."""
    if isinstance(err, GRPCError):
        return Code(err.status.value), err.message or ""
    return failed_call(err, deadline.time_remaining() if deadline is not None else None)
