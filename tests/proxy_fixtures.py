"""Fixtures for the proxy tests: the example service on a real grpclib server, on loopback.

- `running_upstream(service, port=None)`: a grpclib `Server` hosting `service` on 127.0.0.1
  (a free port unless given),
  in a thread with its own event loop (so each request may run on a fresh loop, as `call` does).
  It records the metadata of every request it receives and answers with initial metadata
  `x-served-by: bookstore`.
- `make_proxy_service(pb)`: `make_test_service(pb)` where `GET /v1/shelves/slow` takes `SLOW`
  seconds.
- `proxy_call(gateway, ...)`: `asgi_call`, then the gateway's channel closed on the same loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from grpclib.events import RecvRequest, SendInitialMetadata, listen
from grpclib.server import Server

from protoc_gen_restmon.runtime.gateway import Gateway
from tests.gateway_fixtures import Reply, asgi_call, make_test_service

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


def free_port() -> int:
    """A loopback port nothing listens on (bound once by the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_proxy_service(pb: ModuleType) -> Any:
    base: type = type(make_test_service(pb))

    class SlowBookstore(base):  # type: ignore[misc]
        async def get_shelf(self, request: Any) -> Any:
            if request.shelf == "slow":
                await asyncio.sleep(SLOW)
            return await super().get_shelf(request)

    return SlowBookstore()


@contextlib.contextmanager
def running_upstream(service: Any, port: int | None = None) -> Iterator[RunningUpstream]:
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
            server.close()
            await server.wait_closed()

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
            gateway.backend.close()

    return asyncio.run(run())
