"""Stopping a grpclib server the tests started, on every Python we support."""

from __future__ import annotations

import asyncio

from grpclib.server import Server

from protoc_gen_restmon.runtime.grpclib_private import running_calls


async def close_server(server: Server, timeout: float = 5.0) -> None:
    """Stop listening, cancel the running calls and wait for them to end.

    Not `Server.wait_closed()`: from Python 3.12 on it also waits for every client to close its
    connection, and a gateway under test keeps its channel to the upstream open until it is
    closed itself (after the upstream, in the fixtures' order).
    """
    calls = running_calls(server)
    server.close()
    if calls:
        await asyncio.wait(calls, timeout=timeout)
