"""Every use of grpclib's private attributes, in one place; nothing else in the project uses any.

Each entry names the grpclib internals it relies on, as read in grpclib 0.4.9 (GRPCLIB_VERSION),
and why there is no public way. tests/test_grpclib_private.py pins them against the installed
grpclib: an upgrade that changes one fails there, loudly, before it breaks a server quietly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from grpclib.config import Configuration
from h2.connection import ConnectionState
from multidict import MultiDict

if TYPE_CHECKING:
    from grpclib.client import Channel
    from grpclib.const import Handler
    from grpclib.protocol import H2Protocol
    from grpclib.server import Server, Stream

GRPCLIB_VERSION = "0.4.9"  # the version whose source these were read from

# --- Types grpclib keeps private: our own spelling of the same types ---


class MethodFunc(Protocol):
    """A server method handler, as in the server's method table: grpclib._typing's
    IServerMethodFunc."""

    async def __call__(self, stream: Stream[Any, Any]) -> None: ...


# A stream's metadata (`Stream.metadata`): grpclib.metadata._Metadata, a NewType of this.
Metadata = MultiDict[str | bytes]
# What `send_trailing_metadata(metadata=...)` takes: grpclib.metadata._MetadataLike.
MetadataLike = Mapping[str, str | bytes] | Collection[tuple[str, str | bytes]]


# --- The server's method table ---


def method_table(server: Server) -> dict[str, Handler]:
    """The server's handlers by gRPC path (`/pkg.Service/Method`), to read and to replace.

    `Server._mapping` (0.4.9): the dict `Server.__init__` builds from each handler's
    `__mapping__()`; every new connection's request handler is given this same dict, so an
    entry replaced (`handler._replace(func=...)`) serves the next call. No public way: a
    Server takes its handlers once and offers nothing around a handler but the RecvRequest
    event, which costs grpclib's event dispatch on every call (grpclib_events.py)."""
    mapping = getattr(server, "_mapping", None)
    if not isinstance(mapping, dict):
        raise TypeError(
            f"{type(server).__name__} has no method table (_mapping): not a grpclib Server,"
            f" or a grpclib other than {GRPCLIB_VERSION} (see runtime/grpclib_private.py)"
        )
    return mapping


# --- A server's listening socket and running calls (a graceful stop) ---


def stop_listening(server: Server) -> None:
    """Close the server's listening socket; its connections and their calls keep running.

    `Server._server` (0.4.9): the asyncio.Server `start()` made (None before). No public way:
    `Server.close()` also cancels every running call at once, with no grace."""
    listener = server._server
    if listener is None:
        raise RuntimeError("the grpclib server was not started")
    listener.close()


def running_calls(server: Server) -> list[asyncio.Task[None]]:
    """The handler tasks of the server's calls still running, on every connection.

    `Server._handlers` (0.4.9: one grpclib Handler per connection) and `Handler._tasks` (its
    running calls, stream -> task; done ones are swept lazily, hence the `done()` filter).
    No public way: `Server.wait_closed()` waits for calls only once `close()` has cancelled
    them, and from Python 3.12 on also for every client to close its connection."""
    return [
        task for handler in server._handlers for task in handler._tasks.values() if not task.done()
    ]


# --- A client channel's connection ---


async def connect(channel: Channel) -> H2Protocol:
    """Open the channel's connection now (or return the open one).

    `Channel.__connect__()` (0.4.9): what every `request` awaits first; undocumented. No public
    way: a channel connects lazily, inside its first call, and the gateway must tell a refused
    connection (UNAVAILABLE) within its connect timeout from a slow call."""
    return await channel.__connect__()


def stale_connection(channel: Channel) -> bool:
    """Whether the channel's connection is known to be gone, though grpclib would reuse it.

    grpclib reconnects only once `connection_lost` ran; a transport already closing, or an
    HTTP/2 connection closed by a GOAWAY, is as dead and would take (and lose) the next call.
    `Channel._protocol` (the H2Protocol, None before the first connection) and the
    `Channel._connected` property (0.4.9: a protocol whose `connection_lost` did not run), then
    the protocol's `connection` (grpclib.protocol.Connection) and its h2 connection,
    `Connection._connection`, whose state machine says CLOSED after a GOAWAY. No public way:
    a channel exposes no connection state at all."""
    protocol = channel._protocol
    if protocol is None or not channel._connected:
        return False  # none yet, or one grpclib replaces by itself
    connection = protocol.connection
    return bool(
        connection.is_closing()
        or connection._connection.state_machine.state is ConnectionState.CLOSED
    )


def keepalive(interval: float, timeout: float) -> Configuration:
    """A client Configuration that pings every `interval` seconds, busy or idle, and closes
    the connection when a ping is not acknowledged within `timeout`.

    The underscored fields of `grpclib.config.Configuration` (0.4.9): `_keepalive_time`,
    `_keepalive_timeout`, `_keepalive_permit_without_calls`, `_http2_max_pings_without_data`,
    `_http2_min_sent_ping_interval_without_data`; grpclib marks them experimental with the
    underscore. No public way: they are grpclib's only keepalive settings."""
    return Configuration(
        _keepalive_time=interval,
        _keepalive_timeout=timeout,
        _keepalive_permit_without_calls=True,
        _http2_max_pings_without_data=0,
        _http2_min_sent_ping_interval_without_data=interval,
    )
