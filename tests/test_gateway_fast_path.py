"""The in-process gateway's shortcuts answer exactly what the long way does.

- Call options: in process they are built only for requests `build_call_options` could refuse
  (`app._may_refuse`); every request it refuses must be one of those.
- The disconnect watcher: a handler that never yields to the event loop is answered without
  a watcher task; one that waits still gets one (tests/test_proxy_failures.py checks that a
  client leaving cancels it, and that restmon's protocol needs none).
- No request leaves a cycle of references for the garbage collector, through either server.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.connections import ConnectionLimits
from protoc_gen_restmon.runtime.gateway.app import Gateway, _may_refuse
from protoc_gen_restmon.runtime.gateway.backends import Single
from protoc_gen_restmon.runtime.gateway.http import Exchange
from protoc_gen_restmon.runtime.gateway.upstream import build_call_options, forwarded_names
from protoc_gen_restmon.runtime.status import RpcError
from tests.support.gateway_fixtures import asgi_call, make_test_service
from tests.support.servers import content_length, uvicorn_server

FORWARD = forwarded_names(["x-tenant"])
NAMES = st.sampled_from(
    [
        "grpc-timeout",
        "x-forwarded-for",
        "authorization",
        "x-api-key",
        "x-tenant",
        "grpc-metadata-trace",
        "grpc-metadata-blob-bin",
        "Grpc-Metadata-Upper",
        "X-API-Key",
        "user-agent",
        "accept",
        "x-request-id",
    ]
) | st.text(st.characters(codec="latin-1"), min_size=1, max_size=12)
VALUES = st.text(st.characters(codec="latin-1"), max_size=12) | st.sampled_from(
    ["1S", "500m", "abc", "", "a\r\nb", "dmFsdWU", "10.0.0.1"]
)
HOSTS = st.none() | st.sampled_from(["127.0.0.1", "::1", ""]) | st.text(max_size=6)


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(NAMES, VALUES), max_size=4), host=HOSTS)
def test_may_refuse_covers_every_request_build_call_options_refuses(
    headers: list[tuple[str, str]], host: str | None
) -> None:
    scope: dict[str, Any] = {
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": None if host is None else (host, 1234),
    }
    try:
        build_call_options(scope, 30.0, "request-1", FORWARD)
    except RpcError:
        assert _may_refuse(scope, FORWARD)


def test_a_handler_that_never_waits_is_answered_without_a_watcher_task(
    bookstore_pb: ModuleType,
) -> None:
    watchers = _watchers_started(Gateway(services=[make_test_service(bookstore_pb)]))

    assert watchers == 0


def test_a_handler_that_waits_gets_a_watcher_task(bookstore_pb: ModuleType) -> None:
    service = make_test_service(bookstore_pb)
    list_shelves = service.list_shelves

    async def waiting(request: Any) -> Any:
        await asyncio.sleep(0)
        return await list_shelves(request)

    service.list_shelves = waiting
    watchers = _watchers_started(Gateway(services=[service]))

    assert watchers == 1


def _watchers_started(app: Gateway) -> int:
    """How many disconnect watcher tasks one successful `GET /v1/shelves` starts."""
    created: list[str] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            created.append(coro.__qualname__)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        reply = await asyncio.create_task(asgi_call(app, "GET", "/v1/shelves"))
        assert reply.status == 200, reply.body

    asyncio.run(run())
    return created.count("Exchange._watch")


def test_single_gives_its_message_once() -> None:
    async def drain(iterator: Single) -> list[Any]:
        return [item async for item in iterator]

    message: Any = object()
    closed = Single(message)
    asyncio.run(closed.aclose())

    assert asyncio.run(drain(Single(message))) == [message]
    assert asyncio.run(drain(closed)) == []


def test_a_watched_request_leaves_no_reference_cycle() -> None:
    """Once `run` is over, the exchange's scheduled start and cancelled watcher are forgotten:
    kept, each made a cycle (exchange, task, frames, the server's request cycle) of every
    request for the garbage collector to find, a tenth of `restmon serve`'s CPU under load."""
    found: list[int] = []

    async def run() -> None:
        disconnected = asyncio.Event()  # never set: the client stays, as under load
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            return None

        async def work() -> str:
            for _ in range(3):  # the watcher starts and waits
                await asyncio.sleep(0)
            return "done"

        exchange = Exchange(receive, send)
        await exchange.receive()
        assert await exchange.run(work()) == "done"
        del exchange
        for _ in range(3):  # the watcher's cancellation delivered
            await asyncio.sleep(0)
        found.append(gc.collect())

    gc.collect()
    gc.disable()
    try:
        asyncio.run(run())
    finally:
        gc.enable()
    assert found == [0]


@pytest.mark.parametrize("server", ["uvicorn", "restmon"])
def test_requests_through_a_server_leave_no_reference_cycles(
    bookstore_pb: ModuleType, server: str
) -> None:
    """Requests answered through uvicorn's protocol (a watcher task each) or restmon's
    (ON_DISCONNECT instead) leave nothing for the garbage collector: each a cycle (the
    request's scope holding what holds its server cycle, say) cost a tenth of the CPU.
    The client is a raw socket: httpx's own objects make cycles of every request."""
    service = make_test_service(bookstore_pb)
    list_shelves = service.list_shelves

    async def waiting(request: Any) -> Any:
        await asyncio.sleep(0)  # the watcher starts (on uvicorn's protocol)
        return await list_shelves(request)

    service.list_shelves = waiting
    limits = ConnectionLimits() if server == "restmon" else None
    with uvicorn_server(Gateway(services=[service]), limits=limits) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            reader = sock.makefile("rb")

            def garbage(requests: int) -> int:
                gc.collect()
                for _ in range(requests):
                    sock.sendall(b"GET /v1/shelves HTTP/1.1\r\nHost: test\r\n\r\n")
                    assert _read_response(reader).startswith(b"HTTP/1.1 200 ")
                return gc.collect()

            garbage(5)  # warm: first-call caches
            few, many = garbage(5), garbage(105)
    assert many - few < 20, (few, many)


def _read_response(reader: Any) -> bytes:
    """One keep-alive HTTP/1.1 response with a Content-Length: its head."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        assert line, "the server closed the connection"
        head += line
    reader.read(content_length(head))
    return head
