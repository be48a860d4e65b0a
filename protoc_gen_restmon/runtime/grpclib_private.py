"""Every use of grpclib's private attributes, in one place; nothing else in the project uses any.

Each entry names the grpclib internals it relies on, as read in grpclib 0.4.9 (GRPCLIB_VERSION),
and why there is no public way. tests/test_grpclib_private.py pins them against the installed
grpclib: an upgrade that changes one fails there, loudly, before it breaks a server quietly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from multidict import MultiDict

if TYPE_CHECKING:
    from grpclib.const import Handler
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


async def close_server(server: Server, timeout: float = 5.0) -> None:
    """Stop listening, cancel the running calls and wait (at most `timeout` s) for them to end.
    Not `Server.wait_closed()`: from Python 3.12 on it also waits for every client to close its
    connection. A server never started is left as it is."""
    calls = running_calls(server)
    try:
        server.close()
    except RuntimeError:  # never started: nothing to close
        return
    if calls:
        await asyncio.wait(calls, timeout=timeout)
