"""uvicorn's HTTP/1.1 protocols with the bounds uvicorn lacks (docs/deployment.md).

uvicorn (0.30 to 0.55, httptools and h11 alike) arms a timer only once a response is complete
(`timeout_keep_alive`) and cancels it on the next byte: nothing times out a connection that sends
nothing, half a request head, or a body one byte a minute. `limit_concurrency` answers 503 only
once a head is complete, so silent connections are held, each with its descriptor, until the
process has none left. httptools bounds no head size (h11 does: `h11_max_incomplete_event_size`).
The protocols here add, per connection:

- a **head timeout**: a request head must be complete `head_timeout` seconds after the
  connection is made (or, on a kept-alive connection, after its first byte); else a 408 (or,
  when nothing came, a plain close);
- a **head size** bound: a head is parsed up to `max_head_bytes`; not complete by then, a 431;
- a **minimum body rate**: after `body_grace` seconds, a body of announced length
  (`Content-Length`) must have arrived at `min_body_rate` bytes/s on average; else a 408 and a
  close (the clock stops while the app is not reading). A chunked body is a stream (a
  client-streaming call's NDJSON) that may pause at will: no rate, but among the first closed
  to make room;
- a **connection limit**: at `max_connections`, a new connection closes the connection that has
  waited longest, either without a request in progress (silent, a partial head, or idle between
  requests) or for its request body; when every connection has a request in progress and its
  body in, the new one gets a 503.

Every answer is a `google.rpc.Status` with `connection: close`, then a half close (LINGER).
The checks cost a few attribute reads per `data_received`; a timer only for a head or a body
that does not come whole at once.

They also offer the gateway the ASGI extension ON_DISCONNECT (runtime/gateway/http.py): the
word that a client left before its response was complete, from `connection_lost`, where the
gateway would otherwise keep a task per request waiting for `http.disconnect`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from protoc_gen_restmon.runtime.gateway.http import ON_DISCONNECT, status_json
from protoc_gen_restmon.runtime.status import Code

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "FD_RESERVE",
    "ConnectionLimits",
    "ConnectionTable",
    "bound_uvicorn",
    "connection_limit",
    "raise_fd_limit",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS: Final = 1000
LINGER: Final = 2.0  # seconds a connection we answered stays half open for the client to read
# Descriptors kept for what is not a client connection: listening sockets, the store (SQLite's
# database, WAL and shm), upstream channels, log files, and the connections accepted in one
# burst before the first of them can be refused: asyncio accepts up to `backlog` at once, so
# the listen backlog is bounded by half of this.
FD_RESERVE: Final = 256


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """The bounds of one HTTP server; seconds, bytes, bytes per second."""

    head_timeout: float = 5.0
    keep_alive_timeout: float = 5.0  # uvicorn's timeout_keep_alive, between two requests
    max_head_bytes: int = 64 * 1024
    min_body_rate: float = 1024.0
    body_grace: float = 5.0
    max_connections: int = DEFAULT_MAX_CONNECTIONS


def _answer(status: int, reason: str, code: Code, message: str) -> bytes:
    body = status_json(code, message)
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


HEAD_TIMEOUT: Final = _answer(
    408, "Request Timeout", Code.DEADLINE_EXCEEDED, "the request head did not arrive in time"
)
BODY_TOO_SLOW: Final = _answer(
    408, "Request Timeout", Code.DEADLINE_EXCEEDED, "the request body arrives too slowly"
)
HEAD_TOO_LARGE: Final = _answer(
    431,
    "Request Header Fields Too Large",
    Code.RESOURCE_EXHAUSTED,
    "the request head is too large",
)
TOO_MANY_CONNECTIONS: Final = _answer(
    503, "Service Unavailable", Code.UNAVAILABLE, "too many connections: try again"
)


class ConnectionTable:
    """The connections of one server. Those without a request in progress (`waiting`) and those
    whose request body is still arriving (`reading`) are kept in the order they got there, with
    the time: when the limit is reached, the one there longest is closed (a new connection that
    is about to send its head is not the one to go while a body trickles in)."""

    def __init__(self, limits: ConnectionLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self.open: set[BoundedProtocol] = set()
        self.waiting: dict[BoundedProtocol, float] = {}
        self.reading: dict[BoundedProtocol, float] = {}
        self.evicted = 0
        self.refused = 0

    def admit(self, connection: BoundedProtocol) -> bool:
        """Count a new connection in, making room if need be; False: refuse it."""
        if len(self.open) >= self.limits.max_connections:
            heads = [next(iter(line.items())) for line in (self.waiting, self.reading) if line]
            if not heads:
                self.refused += 1
                return False
            self.evicted += 1
            oldest = min(heads, key=lambda head: head[1])[0]
            self.forget(oldest)
            oldest.evict()
        self.open.add(connection)
        self.waiting[connection] = self.clock()
        return True

    def wait(self, connection: BoundedProtocol) -> None:
        """`connection` has no request in progress (any more): last in line to be closed."""
        self.busy(connection)
        if connection in self.open:
            self.waiting[connection] = self.clock()

    def read(self, connection: BoundedProtocol) -> None:
        """`connection`'s request head is in, its body on its way."""
        self.busy(connection)
        if connection in self.open:
            self.reading[connection] = self.clock()

    def busy(self, connection: BoundedProtocol) -> None:
        self.waiting.pop(connection, None)
        self.reading.pop(connection, None)

    def forget(self, connection: BoundedProtocol) -> None:
        self.open.discard(connection)
        self.busy(connection)


class BoundedProtocol(asyncio.Protocol):
    """The bounds, over uvicorn's HttpToolsProtocol or H11Protocol (the second base).

    Both keep the request being served in `cycle`, made once its head is complete, with
    `more_body` (the body has not all arrived), `response_started`, `response_complete` and
    `disconnected`;
    `flow.read_paused` says the app is not reading (tests/test_hostile_clients.py pins these).
    """

    cycle: Any
    flow: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, table: ConnectionTable, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.table = table
        self.limits = table.limits
        self._seen: Any = None  # the last cycle whose head was seen complete
        self._waiting_head = True  # between requests (or before the first): no cycle runs
        self._head_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._reading = False  # a request body is on its way
        self._discarding = False  # answered by us: what comes is dropped until the close
        self._body_since = 0.0
        self._body_bytes = 0
        # (cycle, callback) registered through ON_DISCONNECT, until the cycle's response is done
        self._on_lost: tuple[Any, Callable[[], None]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.table.admit(self):
            self._answer_and_close(TOO_MANY_CONNECTIONS)
            return
        self._arm(self.limits.head_timeout, self._head_expired)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if self._waiting_head:
            if len(data) > self.limits.max_head_bytes - self._head_bytes:
                self._head_overflow(data)
                return
            self._head_bytes += len(data)
        elif self._timer is not None:
            self._body_bytes += len(data)
        self._feed(data)

    def _head_overflow(self, data: bytes) -> None:
        """More head than `max_head_bytes`, unless the part that fits completes it (then the
        rest is its body, or the next request): parsed up to the bound, never past it."""
        room = self.limits.max_head_bytes - self._head_bytes
        if room > 0:  # (h11 reads b"" as the end of the stream)
            self._head_bytes += room
            self._feed(data[:room])
        if self.transport.is_closing():
            return
        if self._waiting_head:
            self._answer_and_close(HEAD_TOO_LARGE)
            return
        self.data_received(data[room:])

    def _feed(self, data: bytes) -> None:
        super().data_received(data)
        self._observe()
        if not self._waiting_head:
            if self._reading and not self.cycle.more_body:  # the body is in
                self._reading = False
                self._disarm()
                self.table.busy(self)
            return
        if self._timer is None and not self.transport.is_closing():
            self._arm(self.limits.head_timeout, self._head_expired)  # on a kept-alive one

    def on_response_complete(self) -> None:
        if self._on_lost is not None and self._on_lost[0].response_complete:
            self._on_lost = None
        super().on_response_complete()  # type: ignore[misc]
        self._observe()  # h11 may begin a request it had read ahead
        if self.cycle is self._seen and self.cycle.response_complete:
            self._disarm()
            self._reading = False
            self._waiting_head, self._head_bytes = True, 0
            self.table.wait(self)  # uvicorn's keep-alive timer runs until the next byte

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.table.forget(self)
        super().connection_lost(exc)
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None and not on_lost[0].response_complete:
            on_lost[1]()

    def _register_on_lost(self, request: weakref.ref[Any], callback: Callable[[], None]) -> None:
        """ON_DISCONNECT for the request of the cycle `request` refers to (not `self.cycle`:
        with pipelining, that may already be the next request's). A weak reference: the
        cycle holds the scope that holds this, and a cycle of references per request is
        garbage for the collector to find (a tenth of the CPU under load)."""
        cycle = request()
        if cycle is None:
            return
        if cycle.disconnected:
            callback()
        elif not cycle.response_complete:
            self._on_lost = (cycle, callback)

    def evict(self) -> None:
        """Close a connection that has no request in progress (to make room, or silent)."""
        self._disarm()
        self.transport.close()

    def _observe(self) -> None:
        """A new cycle: its head is complete; its body may still be on its way."""
        cycle = self.cycle
        if cycle is self._seen or cycle is None:
            return
        self._seen, self._waiting_head = cycle, False
        extensions = cycle.scope.setdefault("extensions", {})
        extensions[ON_DISCONNECT] = functools.partial(self._register_on_lost, weakref.ref(cycle))
        self._disarm()
        if not cycle.more_body or cycle.response_complete:
            self.table.busy(self)
            return
        self.table.read(self)
        self._reading = True
        if not _chunked(cycle.scope):  # a stream (a client-streaming call) may pause at will
            self._body_since, self._body_bytes = self.loop.time(), 0
            self._arm(self.limits.body_grace, self._body_check)

    def _head_expired(self) -> None:
        self._timer = None
        if self._head_bytes:
            self._answer_and_close(HEAD_TIMEOUT)
        else:  # nothing was asked: no answer (a browser's preconnect, or an attack)
            self.evict()

    def _body_check(self) -> None:
        """At the time the body's average rate would drop below the minimum: is it still due?"""
        self._timer = None
        cycle, now = self.cycle, self.loop.time()
        if cycle is not self._seen or not cycle.more_body or self.transport.is_closing():
            return
        if self.flow.read_paused:  # the app is not reading: the client is not to blame
            self._body_since, self._body_bytes = now, 0
            self._arm(self.limits.body_grace, self._body_check)
            return
        due = (
            self._body_since + self.limits.body_grace + self._body_bytes / self.limits.min_body_rate
        )
        if due > now:
            self._arm(due - now, self._body_check)
            return
        if cycle.response_started:
            self.evict()
        else:
            self._answer_and_close(BODY_TOO_SLOW)

    def _answer_and_close(self, answer: bytes) -> None:
        """Answer, then close once the client has read it: closing at once, with its bytes
        unread, would reset the connection, and a reset can destroy the answer before the
        client reads it. So the write side is shut, what still comes is dropped, and the
        connection closes when the client closes it, or LINGER seconds later."""
        self._disarm()
        self._discarding = True
        if not self.transport.can_write_eof():  # TLS: no half close
            self.transport.write(answer)
            self.transport.close()
            return
        self.transport.write(answer)
        self.transport.write_eof()
        self._timer = self.loop.call_later(LINGER, self.transport.close)

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _chunked(scope: Any) -> bool:
    """The body comes in chunks of unannounced length: a stream."""
    return any(
        name == b"transfer-encoding" and b"chunked" in value.lower()
        for name, value in scope["headers"]
    )


class BoundedH11(BoundedProtocol, H11Protocol):
    """uvicorn's h11 protocol, bounded."""


def _protocol_classes() -> dict[str, type[BoundedProtocol]]:
    classes: dict[str, type[BoundedProtocol]] = {"h11": BoundedH11, "auto": BoundedH11}
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed: uvicorn's "auto" is h11 too
        return classes

    class BoundedHttpTools(BoundedProtocol, HttpToolsProtocol):
        """uvicorn's httptools protocol, bounded."""

    classes["httptools"] = classes["auto"] = BoundedHttpTools
    return classes


PROTOCOLS: Final = _protocol_classes()


def bound_uvicorn(config: uvicorn.Config, limits: ConnectionLimits) -> ConnectionTable:
    """Make `config` serve HTTP through the bounded protocol for its `http` setting ("auto",
    "h11" or "httptools"), with `limits`; returns the table of its connections."""
    if config.loaded:
        raise TypeError("bound_uvicorn: give a uvicorn.Config that has not been loaded")
    if not isinstance(config.http, str) or config.http not in PROTOCOLS:
        raise TypeError(f"bound_uvicorn: http={config.http!r}: one of {sorted(PROTOCOLS)}")
    table = ConnectionTable(limits, time.monotonic)
    # uvicorn calls config.http with config, server_state and app_state by keyword.
    config.http = functools.partial(PROTOCOLS[config.http], table=table)  # type: ignore[assignment]
    config.timeout_keep_alive = limits.keep_alive_timeout  # type: ignore[assignment]
    config.backlog = min(config.backlog, FD_RESERVE // 2)
    return table


def raise_fd_limit() -> int | None:
    """Raise the soft limit on open descriptors to the hard one; the soft limit now (None: no
    such limit on this system)."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:
            logger.warning("cannot raise the open file limit from %d to %d: %s", soft, hard, error)
    return None if soft == resource.RLIM_INFINITY else soft


def connection_limit(wanted: int, fd_limit: int | None) -> int:
    """`wanted`, lowered below `fd_limit` by FD_RESERVE descriptors (by half of a small one)."""
    if fd_limit is None:
        return wanted
    return max(1, min(wanted, max(fd_limit // 2, fd_limit - FD_RESERVE)))
