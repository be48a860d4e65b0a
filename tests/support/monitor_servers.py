"""Servers for the monitor tests: real grpclib and grpc.aio servers on loopback, and store reads.

- `controlled_bookstore(pb)`: the example Bookstore (`make_test_service`) where GetShelf("gate")
  waits until the test releases it (then answers the "fiction" shelf), GetShelf("slow") sleeps
  `SLOW` seconds, WatchShelf("shelves/endless") sends one event then sleeps, and ImportBooks
  reports each book as it arrives (so a test can prove the stream is not buffered).
- `grpclib_server(monitor, service)`: a grpclib `Server` with the monitor attached, and a
  `Channel` to it.
- `grpc_aio_server(monitor)`: a grpc.aio server with the monitor's interceptor, serving the raw
  bytes `Echo` service below, and a channel to it.
- `uvicorn_server(app)`: uvicorn serving an ASGI app on a free loopback port, in a thread.
- `recorded(monitor, method)`: the stored records of a method, after flushing the writer;
  `final_record(...)`: waits (bounded) until a call's final record is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]
from grpclib.client import Channel
from grpclib.server import Server

from protoc_gen_restmon.runtime.grpclib_private import close_server
from protoc_gen_restmon.runtime.monitor.model import CallRecord, CallStatus, RequestQuery
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from tests.support import servers
from tests.support.gateway_fixtures import make_test_service
from tests.support.servers import free_port

SLOW = 3.0  # seconds a slow handler sleeps: far beyond every deadline the tests set
WAIT = 5.0  # seconds a test waits for something that should happen at once


@dataclass
class Gate:
    """A handler parks on `release` after setting `entered`; `exited` is set when it leaves."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)

    async def pass_through(self) -> None:
        self.entered.set()
        try:
            await self.release.wait()
        finally:
            self.exited.set()


def controlled_bookstore(pb: ModuleType) -> Any:
    base: type = type(make_test_service(pb))

    class ControlledBookstore(base):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.gate = Gate()
            self.arrived: asyncio.Queue[str] = asyncio.Queue()

        async def get_shelf(self, request: Any) -> Any:
            if request.shelf == "gate":
                await self.gate.pass_through()
                request.shelf = "fiction"  # a shelf that exists
            elif request.shelf == "slow":
                await asyncio.sleep(SLOW)
            return await super().get_shelf(request)

        async def watch_shelf(self, request: Any) -> AsyncIterator[Any]:
            if request.name != "shelves/endless":
                async for event in super().watch_shelf(request):
                    yield event
                return
            yield pb.ShelfEvent(shelf=request.name, book_removed="shelves/endless/books/1")
            await asyncio.sleep(SLOW)  # the client gives up before the next event

        async def import_books(self, requests: AsyncIterator[Any]) -> Any:
            count = 0
            async for book in requests:
                count += 1
                self.arrived.put_nowait(book.title)
            return pb.ImportBooksResponse(imported_count=count)

    return ControlledBookstore()


@contextlib.asynccontextmanager
async def grpclib_server(monitor: Monitor | None, service: Any) -> AsyncIterator[Channel]:
    server = Server([service])
    if monitor is not None:
        monitor.attach(server)
    port = free_port()
    await server.start("127.0.0.1", port)
    channel = Channel("127.0.0.1", port)
    try:
        yield channel
    finally:
        channel.close()
        await close_server(server)


# --- A raw-bytes grpc.aio service: requests and responses are plain bytes ---


@dataclass
class Echo:
    """`test.Echo`: Unary, ClientStream, ServerStream and Bidi, steered by the request bytes:
    b"fail" aborts with NOT_FOUND, b"crash" raises, b"slow" sleeps, b"gate" parks on `gate`,
    b"trailers" sets trailing metadata of its own, b"abort-cancelled" is cancelled in `abort`."""

    gate: Gate = field(default_factory=Gate)
    arrived: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)

    async def unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await self._act(request, context)
        return b"echo:" + request

    async def client_stream(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> bytes:
        count = 0
        async for request in requests:
            count += 1
            self.arrived.put_nowait(request)
        return str(count).encode()

    async def server_stream(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        for index in range(3):
            yield request + str(index).encode()
        await self._act(request, context)

    async def bidi(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for request in requests:
            await self._act(request, context)
            yield request

    async def _act(self, request: bytes, context: grpc.aio.ServicerContext) -> None:
        if request == b"fail":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        elif request == b"crash":
            raise RuntimeError("the echo broke")
        elif request == b"slow":
            await asyncio.sleep(SLOW)
        elif request == b"gate":
            await self.gate.pass_through()
        elif request == b"trailers":
            context.set_trailing_metadata((("x-handler", "own"),))
        elif request == b"abort-cancelled":
            # The server cancels the call while `abort` sends its status, as a server that stops
            # right after a call has been answered does.
            task = asyncio.current_task()
            assert task is not None
            asyncio.get_running_loop().call_soon(task.cancel)
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "test.Echo",
            {
                "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
                "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream),
                "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream),
                "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi),
            },
        )


@contextlib.asynccontextmanager
async def grpc_aio_server(monitor: Monitor | None, echo: Echo) -> AsyncIterator[grpc.aio.Channel]:
    interceptors = [monitor.grpc_aio_interceptor()] if monitor is not None else []
    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers((echo.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(grace=None)


@contextlib.contextmanager
def uvicorn_server(app: Any, **options: Any) -> Iterator[str]:
    """`tests.support.servers.uvicorn_server` without lifespan, and with proxy_headers=False:
    uvicorn would otherwise rewrite the peer from X-Forwarded-For itself (it trusts 127.0.0.1 by
    default), and the monitor's own resolution is under test."""
    with servers.uvicorn_server(
        app, **{"lifespan": "off", "proxy_headers": False, **options}
    ) as url:
        yield url


# --- Reading what the monitor stored ---


def recorded(
    monitor: Monitor, method: str | None = None, *, settle: bool = True
) -> list[CallRecord]:
    """Every stored record (of `method`), oldest first, after writing what is queued; with
    `settle`, once no call is in flight (a call finishes after its client has the answer)."""
    written = monitor.settle(WAIT) if settle else monitor.writer.flush(WAIT)
    assert written, "calls still running, or the writer did not flush in time"
    page = monitor.store.requests(RequestQuery(method=method, limit=1000))
    return sorted(page.results, key=lambda r: r.created_at)


def only(records: list[CallRecord]) -> CallRecord:
    [record] = records
    return record


async def final_record(monitor: Monitor, method: str) -> CallRecord:
    """The one record of `method`, once it is no longer pending (waits at most WAIT seconds):
    a server learns of a cancellation asynchronously, after the client has moved on."""
    return await asyncio.to_thread(final_record_sync, monitor, method)


def final_record_sync(monitor: Monitor, method: str) -> CallRecord:
    deadline = time.monotonic() + WAIT
    while True:
        records = recorded(monitor, method)
        if records and records[0].status is not CallStatus.PENDING:
            return only(records)
        if time.monotonic() > deadline:
            raise AssertionError(f"{method} is still pending after {WAIT} s: {records}")
        time.sleep(0.01)


def statuses(records: list[CallRecord]) -> list[tuple[str, CallStatus, str]]:
    return [(r.method_name, r.status, r.grpc_status_code) for r in records]


@contextlib.contextmanager
def closing(monitor: Monitor) -> Iterator[Monitor]:
    try:
        yield monitor
    finally:
        monitor.close()
