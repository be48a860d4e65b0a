"""Serving until SIGTERM or SIGINT, then one clean stop: the sequence `restmon serve` and the
demo (`examples/serve.py`) share.

    run(serve_until_stopped(uvicorn.Config(app, port=8080), grpc=[server], monitor=monitor))

On the first SIGTERM or SIGINT:

1. every server stops accepting: uvicorn closes its listening socket and its idle connections
   (a busy one closes once its answer is sent); a grpclib server closes its listening socket
   and refuses calls that still arrive on open connections with UNAVAILABLE; a grpc.aio
   server is given `stop(grace)`;
2. calls in flight get `grace` seconds to finish; those still running then are cancelled
   (their records say CANCELLED); a second signal cancels them at once;
3. then, and only then, the monitor: `settle` (no call in flight, every record written), then
   `close` (queued records written, the store closed: SQLite checkpoints its WAL), each
   waiting at most `DRAIN_TIMEOUT` seconds;
4. `serve_until_stopped` returns: the process exits 0.

While serving, HTTP connections are bounded (`connections.ConnectionLimits`: head timeout, head
size, body rate, a connection limit below the descriptor limit, which is raised to its hard
limit first), and repeating log records are written once per interval (`log_throttle`).

uvicorn's own signal handling is switched off (it re-raises the signal it caught once it has
stopped, so the process dies of it, 143, before anything after it runs): the handlers here are
the only ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import time
from collections.abc import Coroutine, Generator, Sequence
from typing import TYPE_CHECKING, Any, cast

import uvicorn
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server as GrpclibServer

from protoc_gen_restmon.runtime.connections import (
    ConnectionLimits,
    bound_uvicorn,
    connection_limit,
    raise_fd_limit,
)
from protoc_gen_restmon.runtime.gateway.http import respond_error
from protoc_gen_restmon.runtime.grpclib_private import (
    close_server,
    method_table,
    running_calls,
    stop_listening,
)
from protoc_gen_restmon.runtime.log_throttle import throttle_repeated_logs
from protoc_gen_restmon.runtime.status import Code, RpcError

if TYPE_CHECKING:
    from grpc.aio import Server as AioServer  # type: ignore[import-untyped]
    from grpclib.server import Stream

    from protoc_gen_restmon.runtime.gateway.http import App, Receive, Scope, Send
    from protoc_gen_restmon.runtime.monitor.monitor import Monitor

logger = logging.getLogger(__name__)

DEFAULT_GRACE = 10.0  # seconds calls in flight get to finish once a stop is asked for
DRAIN_TIMEOUT = 5.0  # seconds the monitor then gets to write what it holds (each step)
DEFAULT_LIMITS = ConnectionLimits()
POLL = 0.02  # seconds between two looks at a grpclib server's running calls
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SHUTTING_DOWN = "the server is shutting down"


class Stop:
    """The signals received: `asked` on the first, `hurried` on the second."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.hurried = asyncio.Event()

    def signalled(self, signum: int) -> None:
        if self.asked.is_set():
            logger.warning("%s again: cancelling the calls in flight", signal.Signals(signum).name)
            self.hurried.set()
            return
        logger.info("%s: stopping", signal.Signals(signum).name)
        self.asked.set()

    @contextlib.contextmanager
    def on_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self.signalled, signum)
        try:
            yield
        finally:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)


class StopAware:
    """The HTTP app, for the stop: a request cancelled at the end of the grace answers 503
    UNAVAILABLE (a google.rpc.Status body) if it had not answered yet, and ends without an
    error. Left to uvicorn, the cancellation is logged as an "Exception in ASGI application",
    traceback and all, and answered 500."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.stopping = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if not self.stopping or scope["type"] != "http":
                raise
            # An answer already begun cannot be replaced (the server refuses a second
            # http.response.start): uvicorn then closes the connection, the client's signal.
            with contextlib.suppress(RuntimeError, OSError):
                await respond_error(send, RpcError(Code.UNAVAILABLE, SHUTTING_DOWN), [])


class QuietUvicorn(uvicorn.Server):
    """A uvicorn server that leaves signals alone (`capture_signals`, uvicorn ≥ 0.29)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve_until_stopped(
    http: uvicorn.Config,
    *,
    grpc: Sequence[GrpclibServer | AioServer] = (),
    monitor: Monitor | None = None,
    grace: float = DEFAULT_GRACE,
    limits: ConnectionLimits | None = DEFAULT_LIMITS,
    sockets: Sequence[socket.socket] | None = None,
) -> None:
    """Serve `http` (and the started gRPC servers `grpc`) until SIGTERM or SIGINT, then stop
    as the module docstring says. The monitor is closed last, whatever happened.

    `limits`: the bounds of HTTP connections (None: uvicorn's protocol as it is).
    `sockets`: listening sockets to serve on instead of binding `http`'s host and port (a
    worker of `restmon serve --workers N` serves on the one its parent bound)."""
    throttle_repeated_logs()
    if limits is not None:
        _bound(http, limits)
    stop = Stop()
    # Typed int by uvicorn, used as asyncio.timeout's delay: a float works as well.
    http.timeout_graceful_shutdown = grace  # type: ignore[assignment]
    if isinstance(http.app, str):
        raise TypeError("serve_until_stopped: give uvicorn.Config the app, not its import path")
    app = http.app = StopAware(cast("App", http.app))
    server = QuietUvicorn(http)
    with stop.on_signals():  # till the end: a signal while the monitor drains changes nothing
        try:
            serving = asyncio.ensure_future(_uvicorn(server, sockets))
            await _first(stop.asked.wait(), serving)
            if serving.done():  # uvicorn ended by itself (failed to start): nothing to drain
                failed = serving.result()
                raise SystemExit(failed)  # after the finally below, as uvicorn.run would
            began = time.monotonic()
            app.stopping = True
            await asyncio.gather(
                _stop_http(server, serving, stop),
                *(_stop_grpc(each, grace, stop) for each in grpc),
            )
            logger.info("servers stopped in %.2f s", time.monotonic() - began)
        finally:
            for each in grpc:  # servers that never got to stop (uvicorn failed): at once
                await _close_grpc(each)
            if monitor is not None:
                await asyncio.to_thread(_drain, monitor)


def _bound(http: uvicorn.Config, limits: ConnectionLimits) -> None:
    """The descriptor limit raised, the connection limit below it, uvicorn's protocol bounded."""
    fd_limit = raise_fd_limit()
    allowed = connection_limit(limits.max_connections, fd_limit)
    if allowed < limits.max_connections:
        logger.warning(
            "at most %d connections (not %d): %s descriptors may be open",
            allowed,
            limits.max_connections,
            fd_limit,
        )
    bound_uvicorn(http, dataclasses.replace(limits, max_connections=allowed))


async def _uvicorn(
    server: uvicorn.Server, sockets: Sequence[socket.socket] | None
) -> int | str | None:
    """`server.serve()`; the status uvicorn exits with when it cannot start (a port in use):
    its SystemExit must not escape a task (asyncio would end the loop around us)."""
    try:
        await server.serve(sockets=list(sockets) if sockets is not None else None)
    except SystemExit as failed:
        return failed.code
    return None


def run(main: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run(main)` on uvloop when it is installed, as `uvicorn.run` would."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


async def _first(*waits: Coroutine[Any, Any, Any] | asyncio.Future[Any]) -> None:
    """Wait until one of `waits` is done; cancel the coroutines among the others."""
    tasks = [asyncio.ensure_future(each) for each in waits]
    owned = [t for t, w in zip(tasks, waits, strict=True) if asyncio.iscoroutine(w)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in owned:
            task.cancel()


async def _stop_http(server: uvicorn.Server, serving: asyncio.Future[Any], stop: Stop) -> None:
    """uvicorn's own graceful shutdown (`timeout_graceful_shutdown` is the grace), cut short by
    a second signal; then the request tasks it cancelled are given the time to end."""
    server.should_exit = True
    await _first(serving, stop.hurried.wait())
    if not serving.done():
        for task in list(server.server_state.tasks):
            task.cancel()
        # And no more waiting for connections: one whose request has no task yet (or that is
        # slow to close) would otherwise hold uvicorn until the grace is over. uvicorn then
        # skips the lifespan shutdown too (the gateway's upstream channel stays open: the
        # process is about to end).
        server.force_exit = True
        await serving
    if serving.result() is not None:  # it exited while stopping: say so, as uvicorn.run would
        raise SystemExit(serving.result())
    # uvicorn cancels the tasks still running at the end of the grace without waiting for
    # them: each must still record its call (CANCELLED) before the monitor closes.
    if server.server_state.tasks:
        await asyncio.wait(list(server.server_state.tasks), timeout=DRAIN_TIMEOUT)


async def _stop_grpc(server: GrpclibServer | AioServer, grace: float, stop: Stop) -> None:
    if not isinstance(server, GrpclibServer):
        await _first(server.stop(grace), stop.hurried.wait())
        await server.stop(0)  # at once (a no-op when the graceful stop has finished)
        return
    stop_listening(server)
    _refuse_new_calls(server)
    deadline = time.monotonic() + grace
    while running_calls(server) and time.monotonic() < deadline and not stop.hurried.is_set():
        await asyncio.sleep(POLL)
    await _close_grpc(server)


async def _close_grpc(server: GrpclibServer | AioServer) -> None:
    """Cancel the calls still running and wait for them to end. Not `Server.wait_closed()`:
    from Python 3.12 on it also waits for every client to close its connection."""
    if not isinstance(server, GrpclibServer):
        await server.stop(0)
        return
    await close_server(server, DRAIN_TIMEOUT)


def _refuse_new_calls(server: GrpclibServer) -> None:
    """Calls that arrive on connections still open end at once with UNAVAILABLE (a client
    retries those elsewhere); the ones already running keep their handler."""

    async def refuse(stream: Stream[Any, Any]) -> None:
        raise GRPCError(Status.UNAVAILABLE, SHUTTING_DOWN)

    table = method_table(server)
    for path, handler in table.items():
        table[path] = handler._replace(func=refuse)


def _drain(monitor: Monitor) -> None:
    """Every call recorded, then the store closed; runs once the servers have stopped."""
    if not monitor.settle(DRAIN_TIMEOUT):
        stats = monitor.writer.stats()
        logger.warning(
            "stopping with %d call(s) still in flight and %d record(s) queued",
            monitor.in_flight(),
            stats["queue_depth"],
        )
    monitor.close(DRAIN_TIMEOUT)
