"""Fixtures for the proxy tests: the example service on a real grpclib server, on loopback.

- `running_upstream(service, port=None, served_by=True)`: a grpclib `Server` hosting `service` on
  127.0.0.1 (a free port unless given), in a thread with its own event loop (so each request may
  run on a fresh loop, as `call` does). It records the metadata of every request it receives and
  answers with initial metadata `x-served-by: bookstore` (unless `served_by=False`).
- `make_proxy_service(pb)`: `make_test_service(pb)` where `GET /v1/shelves/slow` takes `SLOW`
  seconds.
- `proxy_call(gateway, ...)`: `asgi_call`, then the gateway's channel closed on the same loop.
- `Switchboard(make)`: a grpclib service forwarding every call to its `current` service, a fresh
  `make()` after each `install()`: one server for many tests, each with a fresh service.
- `ProxyBackend`: a conformance backend (tests/support/gateway_fixtures.py) serving through
  `Gateway(upstream=…)` in front of a switchboard-like upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from grpclib.events import RecvRequest, SendInitialMetadata, listen
from grpclib.server import Server, Stream

from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions
from protoc_gen_restmon.runtime.grpclib_private import close_server
from tests.support.gateway_fixtures import Reply, Served, asgi_call, make_test_service
from tests.support.servers import free_port

# A test of grpcio's channel itself, skipped when the suite runs on the asyncio transport.
GRPCIO_ONLY = pytest.mark.skipif(
    os.environ.get("RESTMON_UPSTREAM_TRANSPORT", "auto") != "grpcio",
    reason="grpcio's channel (RESTMON_UPSTREAM_TRANSPORT chose another)",
)
SLOW = 3.0  # seconds GetShelf("slow") takes: longer than every deadline the tests set
SERVED_BY = ("x-served-by", "bookstore")


@dataclass
class RunningUpstream:
    """A gRPC server on loopback, and what it saw."""

    port: int
    service: Any
    metadata: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def make_proxy_service(pb: ModuleType) -> Any:
    base: type = type(make_test_service(pb))

    class SlowBookstore(base):  # type: ignore[misc]
        async def get_shelf(self, request: Any) -> Any:
            if request.shelf == "slow":
                await asyncio.sleep(SLOW)
            return await super().get_shelf(request)

    return SlowBookstore()


@contextlib.contextmanager
def running_upstream(
    service: Any, port: int | None = None, *, served_by: bool = True
) -> Iterator[RunningUpstream]:
    upstream = RunningUpstream(port or free_port(), service)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    servers: list[Server] = []

    async def on_request(event: RecvRequest) -> None:
        upstream.metadata.append((event.method_name, dict(event.metadata)))

    async def on_initial_metadata(event: SendInitialMetadata) -> None:
        event.metadata[SERVED_BY[0]] = SERVED_BY[1]

    async def serve() -> None:
        server = Server([service])
        listen(server, RecvRequest, on_request)
        if served_by:
            listen(server, SendInitialMetadata, on_initial_metadata)
        await server.start("127.0.0.1", upstream.port)
        servers.append(server)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        started.set()
        loop.run_forever()

    async def stop() -> None:
        for server in servers:
            await close_server(server)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(10):
        raise AssertionError("the grpclib server did not start")
    try:
        yield upstream
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def proxy_call(gateway: Gateway, method: str, target: str, **kwargs: Any) -> Reply:
    """`asgi_call` on a fresh event loop, closing the gateway's upstream channel after it."""

    async def run() -> Reply:
        try:
            return await asgi_call(gateway, method, target, **kwargs)
        finally:
            await gateway.backend.close()

    return asyncio.run(run())


class Switchboard:
    """A grpclib service that forwards each call to whichever service is `current`.

    grpclib binds a server to its services' handlers once; tests that each want a fresh service
    `install()` one here instead of starting a server each.
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make
        self.current = make()

    def install(self) -> Any:
        self.current = self.make()
        return self.current

    def __mapping__(self) -> dict[str, Any]:
        return {
            path: handler._replace(func=self._forward(path))
            for path, handler in self.current.__mapping__().items()
        }

    def _forward(self, path: str) -> Callable[[Stream[Any, Any]], Any]:
        async def forward(stream: Stream[Any, Any]) -> None:
            await self.current.__mapping__()[path].func(stream)

        return forward


@dataclass(frozen=True)
class ProxyBackend:
    """Serves the conformance tests through a proxy Gateway in front of a running upstream."""

    name: str
    address: str
    install: Callable[[], Any]  # a fresh recording service upstream; returns it
    # A server's unexpected failure reaches the client as the server reports it (UNKNOWN).
    internal: tuple[int, str]

    def serve(self, pb: ModuleType, options: GatewayOptions) -> Served:
        service = self.install()
        gateway = Gateway(upstream=self.address, packages=[pb], options=options)
        return Served(gateway, service)


@contextlib.contextmanager
def grpclib_backend(pb: ModuleType) -> Iterator[ProxyBackend]:
    """A grpclib server on loopback hosting `make_test_service(pb)`, freshly installed per test."""
    board = Switchboard(lambda: make_test_service(pb))
    with running_upstream(board, served_by=False) as upstream:
        yield ProxyBackend("grpclib", upstream.address, board.install, (2, "Internal Server Error"))
