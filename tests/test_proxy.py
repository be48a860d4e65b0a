"""Proxy mode end to end: `Gateway(upstream=…)` in front of a real grpclib server on loopback.

The server hosts the recording example Bookstore (tests/support/proxy_fixtures.py); requests go
through the gateway's ASGI interface, the call over HTTP/2 as wire bytes. What the gateway does for
every backend (routing, query and body transcoding, responses, codes, streams) is the conformance
suite's (tests/test_gateway_conformance*.py, run on the grpclib and grpcio upstreams too); this
file holds what only proxy mode has: the channel, deadlines, and headers as metadata.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from grpclib.metadata import encode_metadata
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions, UpstreamOptions
from protoc_gen_restmon.runtime.gateway.observe import CallInfo
from protoc_gen_restmon.runtime.gateway.upstream import (
    CallOptions,
    Target,
    build_call_options,
    decode_timeout,
)
from protoc_gen_restmon.runtime.status import Code, RpcError
from tests.support.gateway_fixtures import (
    JSON,
    UUID,
    Served,
    asgi_call,
    assert_status_body,
)
from tests.support.proxy_fixtures import (
    GRPCIO_ONLY,
    SERVED_BY,
    RunningUpstream,
    make_proxy_service,
    proxy_call,
    running_upstream,
)
from tests.support.servers import free_port


@pytest.fixture(name="upstream")
def fixture_upstream(bookstore_pb: ModuleType) -> Iterator[RunningUpstream]:
    with running_upstream(make_proxy_service(bookstore_pb)) as upstream:
        yield upstream


def proxy(pb: ModuleType, upstream: RunningUpstream, **options: Any) -> Served:
    gateway = Gateway(
        upstream=upstream.address,
        packages=[pb],
        options=GatewayOptions(upstream=UpstreamOptions(**options)),
    )
    return Served(gateway, upstream.service)


@pytest.fixture(name="proxied")
def fixture_proxied(bookstore_pb: ModuleType, upstream: RunningUpstream) -> Served:
    return proxy(bookstore_pb, upstream)


# --- Packages and the channel ---


def test_proxy_packages_by_dotted_name(bookstore_pb: ModuleType, upstream: RunningUpstream) -> None:
    gateway = Gateway(upstream=upstream.address, packages=[bookstore_pb.__name__])
    assert proxy_call(gateway, "GET", "/v1/shelves/fiction").json()["name"] == "shelves/fiction"


@GRPCIO_ONLY
def test_proxy_reuses_one_channel_per_loop(proxied: Served) -> None:
    async def twice() -> list[int]:
        first = await asgi_call(proxied.gateway, "GET", "/v1/shelves/fiction")
        second = await asgi_call(proxied.gateway, "GET", "/v1/shelves/fiction")
        await proxied.gateway.backend.close()
        return [first.status, second.status]

    channels: list[Any] = []
    original = type(proxied.gateway.backend).call

    async def spy(self: Any, *args: Any) -> Any:
        channels.append(self.upstream.channel())
        return await original(self, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(proxied.gateway.backend), "call", spy)
        assert asyncio.run(twice()) == [200, 200]
    assert len(channels) == 2 and channels[0] is channels[1]


def test_proxy_lifespan_shutdown_closes_the_channel(proxied: Served) -> None:
    async def scenario() -> list[str]:
        await asgi_call(proxied.gateway, "GET", "/v1/shelves/fiction")
        incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[str] = []

        async def receive() -> dict[str, Any]:
            return incoming.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message["type"])

        await proxied.gateway({"type": "lifespan"}, receive, send)
        return sent

    assert asyncio.run(scenario()) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    upstream = proxied.gateway.backend.upstream  # type: ignore[attr-defined]
    assert getattr(upstream, "_channel", None) is getattr(upstream, "_connection", None) is None


def test_the_channel_carries_a_bidi_stream(bookstore_pb: ModuleType) -> None:
    """SyncInventory (stream ⇄ stream, no HTTP binding) straight on the backend: every update
    written, every ack read back as bytes decoded by upb, on the one grpc.aio channel."""
    base: type = type(make_proxy_service(bookstore_pb))

    class Inventory(base):  # type: ignore[misc]
        async def sync_inventory(self, updates: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for update in updates:
                yield bookstore_pb.InventoryAck(book=update.book, copies_on_hand=update.delta)

    with running_upstream(Inventory()) as upstream:
        gateway = Gateway(upstream=upstream.address, packages=[bookstore_pb])
        method = gateway._methods["/bookstore.v1.BookstoreService/SyncInventory"].rpc

        async def sync() -> list[tuple[str, int]]:
            async def updates() -> AsyncIterator[Any]:
                for delta in (3, -1, 7):
                    yield method.request_upb(book=f"shelves/a/books/{delta}", delta=delta)

            call = await gateway.backend.call(method, updates(), CallOptions())
            try:
                return [(ack.book, ack.copies_on_hand) async for ack in call.messages()]
            finally:
                await call.close()
                await gateway.backend.close()

        acks = asyncio.run(sync())
    assert acks == [("shelves/a/books/3", 3), ("shelves/a/books/-1", -1), ("shelves/a/books/7", 7)]


# --- Failures ---


def test_proxy_upstream_down_is_503_quickly(bookstore_pb: ModuleType) -> None:
    gateway = Gateway(upstream=f"127.0.0.1:{free_port()}", packages=[bookstore_pb])
    began = time.monotonic()
    reply = proxy_call(gateway, "GET", "/v1/shelves/fiction")
    assert time.monotonic() - began < 2
    assert_status_body(reply, 503, 14, "unavailable")


def test_proxy_default_deadline_is_504(bookstore_pb: ModuleType, upstream: RunningUpstream) -> None:
    served = proxy(bookstore_pb, upstream, deadline=0.3)
    began = time.monotonic()
    reply = proxy_call(served.gateway, "GET", "/v1/shelves/slow")
    assert 0.25 < time.monotonic() - began < 2
    assert_status_body(reply, 504, 4)
    # C-core's own deadline says "Deadline Exceeded"; when the upstream, which got the same
    # grpc-timeout, ends the call first, its status says "DEADLINE_EXCEEDED" (a race, both right).
    assert "deadline" in reply.json()["message"].lower()


def test_proxy_grpc_timeout_header_sets_the_deadline(proxied: Served) -> None:
    began = time.monotonic()
    reply = proxy_call(
        proxied.gateway, "GET", "/v1/shelves/slow", headers=[("grpc-timeout", "200m")]
    )
    assert time.monotonic() - began < 2
    assert_status_body(reply, 504, 4)


BAD_TIMEOUTS = [
    pytest.param("1s", id="lower-case-seconds"),
    pytest.param("S", id="no-digits"),
    pytest.param("123456789S", id="nine-digits"),
    pytest.param("1.5S", id="fraction"),
    pytest.param("-1S", id="negative"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("value", BAD_TIMEOUTS)
def test_proxy_malformed_grpc_timeout_is_400(proxied: Served, value: str) -> None:
    reply = proxy_call(
        proxied.gateway, "GET", "/v1/shelves/fiction", headers=[("grpc-timeout", value)]
    )
    assert_status_body(reply, 400, 3, "Grpc-Timeout")
    assert proxied.requests() == []


TIMEOUTS = [
    pytest.param("1S", 1.0, id="seconds"),
    pytest.param("500m", 0.5, id="milliseconds"),
    pytest.param("2M", 120.0, id="minutes"),
    pytest.param("1H", 3600.0, id="hours"),
    pytest.param("250u", 0.00025, id="microseconds"),
    pytest.param("99999999n", 0.099999999, id="eight-digit-nanoseconds"),
]


@pytest.mark.parametrize(("value", "seconds"), TIMEOUTS)
def test_decode_timeout_units(value: str, seconds: float) -> None:
    assert decode_timeout(value) == pytest.approx(seconds)


# --- Headers and metadata (docs/http-transcoding.md §6) ---


def test_proxy_forwards_headers_as_metadata(proxied: Served, upstream: RunningUpstream) -> None:
    headers = [
        ("authorization", "Bearer t0ken"),
        ("x-api-key", "k-1"),
        ("x-request-id", "req-42"),
        ("grpc-metadata-trace-id", "abc"),
        ("grpc-metadata-blob-bin", base64.b64encode(b"\x00\xff").decode().rstrip("=")),
        ("cookie", "session=secret"),
    ]
    reply = proxy_call(proxied.gateway, "GET", "/v1/shelves/fiction", headers=headers)
    assert reply.status == 200
    [(method, metadata)] = upstream.metadata
    assert method == "/bookstore.v1.BookstoreService/GetShelf"
    assert metadata == {
        "authorization": "Bearer t0ken",
        "x-api-key": "k-1",
        "x-request-id": "req-42",
        "trace-id": "abc",
        "blob-bin": b"\x00\xff",
        "x-forwarded-for": "127.0.0.1",
    }


def test_proxy_appends_the_client_to_x_forwarded_for(
    proxied: Served, upstream: RunningUpstream
) -> None:
    headers = [("x-forwarded-for", "203.0.113.7"), ("X-Forwarded-For", " 198.51.100.1 ")]
    reply = proxy_call(proxied.gateway, "GET", "/v1/shelves/fiction", headers=headers)
    assert reply.status == 200
    [(_, metadata)] = upstream.metadata
    assert metadata["x-forwarded-for"] == "203.0.113.7, 198.51.100.1, 127.0.0.1"


def test_proxy_forwards_configured_headers(
    bookstore_pb: ModuleType, upstream: RunningUpstream
) -> None:
    served = proxy(bookstore_pb, upstream, forward_headers=("X-Tenant", "x-trace"))
    headers = [("x-tenant", "acme"), ("x-trace", "t-1"), ("x-other", "no")]
    reply = proxy_call(served.gateway, "GET", "/v1/shelves/fiction", headers=headers)
    assert reply.status == 200
    [(_, metadata)] = upstream.metadata
    assert (metadata["x-tenant"], metadata["x-trace"]) == ("acme", "t-1")
    assert "x-other" not in metadata


@pytest.mark.parametrize("name", ["grpc-status", "content-type", "blob-bin", "bad name", ""])
def test_forward_headers_refuses_names_gRPC_cannot_carry(
    bookstore_pb: ModuleType, name: str
) -> None:
    with pytest.raises(ConfigError, match="forward_headers"):
        Gateway(
            upstream="127.0.0.1:1",
            packages=[bookstore_pb],
            options=GatewayOptions(upstream=UpstreamOptions(forward_headers=(name,))),
        )


SKIPPED_METADATA = [
    pytest.param("grpc-metadata-grpc-status", "0", id="reserved-grpc-prefix"),
    pytest.param("grpc-metadata-content-type", "text/plain", id="reserved-content-type"),
    pytest.param("grpc-metadata-blob-bin", "not base64!", id="bin-not-base64"),
    pytest.param("grpc-metadata-", "x", id="empty-key"),
    pytest.param("x-forwarded-host", "evil", id="not-forwarded"),
]


@pytest.mark.parametrize(("name", "value"), SKIPPED_METADATA)
def test_proxy_skips_headers_gRPC_cannot_carry(
    proxied: Served, upstream: RunningUpstream, name: str, value: str
) -> None:
    reply = proxy_call(proxied.gateway, "GET", "/v1/shelves/fiction", headers=[(name, value)])
    assert reply.status == 200
    [(_, metadata)] = upstream.metadata
    assert set(metadata) == {"x-request-id", "x-forwarded-for"}


def test_proxy_forwards_the_generated_request_id(
    proxied: Served, upstream: RunningUpstream
) -> None:
    reply = proxy_call(proxied.gateway, "GET", "/v1/shelves/fiction")
    [(_, metadata)] = upstream.metadata
    assert UUID.fullmatch(metadata["x-request-id"])
    assert reply.header("x-request-id") == metadata["x-request-id"]


BAD_METADATA = [
    pytest.param("grpc-metadata-note", "a\r\nx-injected: 1", id="crlf"),
    pytest.param("grpc-metadata-note", "a\nb", id="lf"),
    pytest.param("grpc-metadata-note", "caf\u00e9", id="non-ascii"),
    pytest.param("authorization", "Bearer \u00e9", id="non-ascii-authorization"),
    pytest.param("x-api-key", "k\x00", id="control-character"),
]


@pytest.mark.parametrize(("name", "value"), BAD_METADATA)
def test_proxy_refuses_unsafe_metadata_values(
    proxied: Served, upstream: RunningUpstream, name: str, value: str
) -> None:
    reply = proxy_call(proxied.gateway, "GET", "/v1/shelves/fiction", headers=[(name, value)])
    assert_status_body(reply, 400, 3, name)
    assert upstream.metadata == []


def test_proxy_replaces_a_non_ascii_request_id(proxied: Served, upstream: RunningUpstream) -> None:
    reply = proxy_call(
        proxied.gateway, "GET", "/v1/shelves/fiction", headers=[("x-request-id", "caf\u00e9")]
    )
    assert reply.status == 200
    [(_, metadata)] = upstream.metadata
    assert UUID.fullmatch(metadata["x-request-id"])


def test_proxy_returns_response_metadata_as_headers(proxied: Served) -> None:
    reply = proxy_call(proxied.gateway, "GET", "/v1/shelves/fiction")
    assert reply.header(f"grpc-metadata-{SERVED_BY[0]}") == SERVED_BY[1]
    assert UUID.fullmatch(reply.header("x-request-id") or "")


def test_proxy_stream_returns_response_metadata_as_headers(proxied: Served) -> None:
    reply = proxy_call(proxied.gateway, "GET", "/v1/shelves/fiction:watch")
    assert reply.header(f"grpc-metadata-{SERVED_BY[0]}") == SERVED_BY[1]


HEADER_TEXT = st.text(st.characters(max_codepoint=0xFF), max_size=20)
HEADER_NAMES = st.one_of(
    st.sampled_from(
        ["authorization", "x-api-key", "x-request-id", "x-forwarded-for", "cookie", "grpc-timeout"]
    ),
    st.builds(lambda key: "grpc-metadata-" + key, HEADER_TEXT),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(HEADER_NAMES, HEADER_TEXT), max_size=6))
def test_build_call_options_sends_only_valid_metadata_or_refuses(
    headers: list[tuple[str, str]],
) -> None:
    scope = {
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 50000),
    }
    try:
        options = build_call_options(scope, 30.0, "req-1", frozenset({b"cookie"}))
    except RpcError as err:
        assert err.code == Code.INVALID_ARGUMENT and err.http_status == 400
        return
    encode_metadata(options.metadata)  # grpclib's own check: raises on anything unsendable
    for key, value in options.metadata:
        assert "\r" not in key and "\n" not in key
        assert isinstance(value, bytes) or ("\r" not in value and "\n" not in value)


TARGETS = [
    pytest.param("localhost:50051", id="host"),
    pytest.param("[::1]:8443", id="ipv6"),
    pytest.param("dns:///upstream.internal:50051", id="dns"),
    pytest.param("ipv4:10.0.0.1:50051,10.0.0.2:50051", id="ipv4-list"),
    pytest.param("unix:/run/grpc.sock", id="unix"),
]


@pytest.mark.parametrize("address", TARGETS)
def test_target_parse_takes_host_port_and_grpc_targets(address: str) -> None:
    assert Target.parse(address) == Target(address)  # given to grpcio as it is


@pytest.mark.parametrize("address", ["localhost", ":80", "host:port"])
def test_target_parse_refuses_addresses_without_port(address: str) -> None:
    with pytest.raises(ValueError, match="expected host:port"):
        Target.parse(address)


@pytest.mark.parametrize("address", ["dns:///", "ipv4:"])
def test_target_parse_refuses_a_scheme_without_address(address: str) -> None:
    with pytest.raises(ValueError, match="names no address"):
        Target.parse(address)


# --- What the observer (the monitor) is told ---


@dataclass
class Recorder:
    """An observer keeping the CallInfo and the final code of every call."""

    calls: list[tuple[CallInfo, Code]] = field(default_factory=list)

    def begin(self, info: CallInfo) -> Recorder.Call:
        return Recorder.Call(self, info)

    @dataclass
    class Call:
        recorder: Recorder
        info: CallInfo

        def finish(self, code: Code, message: str = "") -> None:
            self.recorder.calls.append((self.info, code))


CARDINALITY_CALLS = [
    pytest.param("GET", "/v1/shelves/fiction", b"", ("GetShelf", "unary"), id="unary"),
    pytest.param(
        "GET", "/v1/shelves/fiction:watch", b"", ("WatchShelf", "server_stream"), id="server"
    ),
    pytest.param(
        "POST", "/v1/books:import", b'{"name":"a"}\n', ("ImportBooks", "client_stream"), id="client"
    ),
]


@pytest.mark.parametrize(("method", "target", "body", "seen"), CARDINALITY_CALLS)
def test_proxy_tells_the_observer_the_grpc_type(
    bookstore_pb: ModuleType,
    upstream: RunningUpstream,
    method: str,
    target: str,
    body: bytes,
    seen: tuple[str, str],
) -> None:
    recorder = Recorder()
    gateway = Gateway(upstream=upstream.address, packages=[bookstore_pb], monitor=recorder)
    reply = proxy_call(gateway, method, target, headers=JSON, body=body)
    assert reply.status == 200, reply.body
    [(info, code)] = recorder.calls
    assert (info.method, info.grpc_type, info.transport, code) == (*seen, "http", Code.OK)
