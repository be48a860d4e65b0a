"""The asyncio transport (`UpstreamOptions(transport="asyncio")`, runtime/gateway/loop_upstream.py)
against real gRPC servers on loopback: what it shares with grpcio's channel, and what it refuses.

The auto transport picks it for one host:port, so the whole proxy suite runs on it; .ci/run runs
the suite once more on grpcio's channel (`RESTMON_UPSTREAM_TRANSPORT=grpcio`)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions
from protoc_gen_restmon.runtime.gateway.loop_upstream import LoopUpstream, _timeout
from protoc_gen_restmon.runtime.gateway.upstream import (
    CallOptions,
    RetryPolicy,
    UpstreamOptions,
    decode_timeout,
)
from protoc_gen_restmon.runtime.status import Code
from tests.support.gateway_fixtures import asgi_call, assert_status_body
from tests.support.pki import Pki
from tests.support.proxy_fixtures import make_proxy_service, proxy_call, running_upstream
from tests.support.upstream_process import UpstreamProcess


def loop_gateway(pb: ModuleType, address: str, **options: Any) -> Gateway:
    upstream = UpstreamOptions(transport="asyncio", **options)
    return Gateway(upstream=address, packages=[pb], options=GatewayOptions(upstream=upstream))


def test_unary_and_server_stream_through_one_connection(
    bookstore_pb: ModuleType, tmp_path: Path
) -> None:
    with UpstreamProcess(bookstore_pb, tmp_path / "events.log") as upstream:
        gateway = loop_gateway(bookstore_pb, upstream.address)
        assert isinstance(gateway.backend.upstream, LoopUpstream)  # type: ignore[attr-defined]

        async def calls() -> tuple[Any, Any, bool]:
            first = await asgi_call(gateway, "GET", "/v1/shelves/fiction")
            connection = gateway.backend.upstream._connection  # type: ignore[attr-defined]
            stream = await asgi_call(gateway, "GET", "/v1/shelves/many:watch?maxEvents=3")
            same = gateway.backend.upstream._connection is connection  # type: ignore[attr-defined]
            await gateway.backend.close()
            return first, stream, same

        first, stream, same = asyncio.run(calls())
    assert first.status == 200 and first.json()["name"] == "shelves/fiction"
    assert len(stream.lines()) == 3, stream.body
    assert same


def test_a_bidi_stream_larger_than_every_window(bookstore_pb: ModuleType) -> None:
    """SyncInventory straight on the backend: 300 updates of ~2 KiB (0.6 MB, ten times the
    server's initial window) go out under flow control, each ack comes back."""
    base: type = type(make_proxy_service(bookstore_pb))

    class Inventory(base):  # type: ignore[misc]
        async def sync_inventory(self, updates: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for update in updates:
                yield bookstore_pb.InventoryAck(book=update.book, copies_on_hand=update.delta)

    with running_upstream(Inventory()) as upstream:
        gateway = loop_gateway(bookstore_pb, upstream.address)
        method = gateway._methods["/bookstore.v1.BookstoreService/SyncInventory"].rpc

        async def sync() -> list[tuple[str, int]]:
            async def updates() -> AsyncIterator[Any]:
                for delta in range(300):
                    yield method.request_upb(book=f"shelves/a/books/{delta:0>2000}", delta=delta)

            call = await gateway.backend.call(method, updates(), CallOptions())
            try:
                return [(ack.book[-3:], ack.copies_on_hand) async for ack in call.messages()]
            finally:
                await call.close()
                await gateway.backend.close()

        acks = asyncio.run(sync())
    assert acks == [(f"{n:0>3}", n) for n in range(300)]


def test_a_killed_upstream_is_503_at_once_and_reached_again_after_a_restart(
    bookstore_pb: ModuleType, tmp_path: Path
) -> None:
    """A real upstream process: SIGKILLed, the next call is a 503 at once (the connection
    closed); started again on the same port, the call after reconnects."""
    with UpstreamProcess(bookstore_pb, tmp_path / "events.log") as upstream:
        gateway = loop_gateway(bookstore_pb, upstream.address)

        async def calls() -> tuple[Any, Any, float, Any]:
            up = await asgi_call(gateway, "GET", "/v1/shelves/fiction")
            upstream.kill()
            began = time.monotonic()
            down = await asgi_call(gateway, "GET", "/v1/shelves/fiction")
            took = time.monotonic() - began
            upstream.start()
            again = await asgi_call(gateway, "GET", "/v1/shelves/fiction")
            await gateway.backend.close()
            return up, down, took, again

        up, down, took, again = asyncio.run(calls())
    assert up.status == 200 and again.status == 200, again.body
    assert_status_body(down, 503, 14, "unavailable")
    assert took < 1.0


def test_the_deadline_resets_the_call_here(bookstore_pb: ModuleType) -> None:
    """GetShelf("slow") takes 3 s upstream; a 200 ms Grpc-Timeout is a 504 after ~200 ms."""
    with running_upstream(make_proxy_service(bookstore_pb)) as upstream:
        gateway = loop_gateway(bookstore_pb, upstream.address)
        began = time.monotonic()
        reply = proxy_call(gateway, "GET", "/v1/shelves/slow", headers=[("grpc-timeout", "200m")])
        took = time.monotonic() - began
    # Ours ("upstream deadline exceeded"), or the upstream's own answer to the grpc-timeout
    # sent (DEADLINE_EXCEEDED), when it reaches the loop before our timer runs.
    assert_status_body(reply, 504, 4)
    assert "deadline" in reply.json()["message"].lower()
    assert 0.15 < took < 1.5


def test_an_ssl_context_is_taken(
    bookstore_pb: ModuleType, tls_upstream: UpstreamProcess, pki: Pki
) -> None:
    """grpcio's channel cannot take an ssl.SSLContext; this transport can (ALPN h2 added)."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    gateway = loop_gateway(bookstore_pb, tls_upstream.address, tls=context)
    reply = proxy_call(gateway, "GET", "/v1/shelves/fiction")
    assert reply.status == 200, reply.body


@pytest.mark.parametrize(
    ("address", "options", "message"),
    [
        ("dns:///localhost:50051", {}, "grpcio transport"),
        ("ipv4:127.0.0.1:1,127.0.0.1:2", {}, "grpcio transport"),
        ("127.0.0.1:1", {"retry": RetryPolicy()}, "no retries"),
        ("127.0.0.1:1", {"channel_options": (("grpc.x", 1),)}, "no channel options"),
    ],
)
def test_what_only_grpcio_does_is_a_config_error(
    bookstore_pb: ModuleType, address: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        loop_gateway(bookstore_pb, address, **options)


@given(st.floats(min_value=0, max_value=10**9, allow_nan=False))
def test_grpc_timeout_is_eight_digits_and_never_longer_than_the_deadline(seconds: float) -> None:
    """gRPC's Timeout: at most 8 digits and a unit; the finest unit that fits, rounded down
    (the server's deadline never outlives ours) by less than one of that unit."""
    text = _timeout(seconds).decode()
    assert 2 <= len(text) <= 9 and text[:-1].isdigit()
    sent = decode_timeout(text)
    assert sent <= seconds * (1 + 1e-12)
    unit = decode_timeout("1" + text[-1])
    assert seconds - sent < unit * (1 + 1e-9) + seconds * 1e-12


class RefusingServer(asyncio.Protocol):
    """An HTTP/2 gRPC server (the h2 library's server side) that refuses the first `refuse`
    streams unprocessed, by `how` (a GOAWAY below them, or RST_STREAM REFUSED_STREAM), and
    answers every later one with an empty message and OK."""

    def __init__(self, log: dict[str, int], how: str, refuse: int) -> None:
        self.log, self.how, self.refuse = log, how, refuse
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.log["connections"] += 1
        self.h2.initiate_connection()
        self.transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.StreamEnded):
                self._answer(event.stream_id)
        self.transport.write(self.h2.data_to_send())

    def _answer(self, stream_id: int) -> None:
        self.log["streams"] += 1
        if self.log["streams"] <= self.refuse and self.how == "goaway":
            self.h2.close_connection(last_stream_id=max(stream_id - 2, 0))
            self.transport.write(self.h2.data_to_send())
            self.transport.close()
            return
        if self.log["streams"] <= self.refuse:
            self.h2.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        self.h2.send_headers(
            stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")]
        )
        self.h2.send_data(stream_id, b"\x00\x00\x00\x00\x00")
        self.h2.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)


def refused_call(pb: ModuleType, how: str, refuse: int) -> tuple[Any, dict[str, int]]:
    """GET /v1/shelves/fiction through the asyncio transport to a RefusingServer."""
    log = {"connections": 0, "streams": 0}

    async def run() -> Any:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: RefusingServer(log, how, refuse), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        gateway = loop_gateway(pb, f"127.0.0.1:{port}")
        try:
            return await asgi_call(gateway, "GET", "/v1/shelves/fiction")
        finally:
            await gateway.backend.close()
            server.close()

    return asyncio.run(run()), log


@pytest.mark.parametrize("how", ["goaway", "rst"])
def test_a_call_the_server_refused_unprocessed_is_made_again(
    bookstore_pb: ModuleType, how: str
) -> None:
    """RFC 9113 §8.7: a stream beyond a GOAWAY's last one, or reset with REFUSED_STREAM, was
    not processed: the call is made once more (after a GOAWAY, on a new connection), and the
    HTTP client never sees the refusal."""
    reply, log = refused_call(bookstore_pb, how, refuse=1)
    assert reply.status == 200, reply.body
    assert log == {"connections": 2 if how == "goaway" else 1, "streams": 2}


@pytest.mark.parametrize("how", ["goaway", "rst"])
def test_a_call_refused_twice_is_unavailable(bookstore_pb: ModuleType, how: str) -> None:
    """Once more only: refused again, the call is a 503 UNAVAILABLE, after two attempts."""
    reply, log = refused_call(bookstore_pb, how, refuse=5)
    assert reply.status == 503, reply.body
    assert reply.json()["code"] == Code.UNAVAILABLE
    assert log["streams"] == 2
