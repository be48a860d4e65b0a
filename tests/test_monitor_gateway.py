"""The Monitor behind the REST gateway: real HTTP (uvicorn on loopback, httpx), real stores.

The gateway calls the monitor itself (`Gateway(services=[...], monitor=monitor)`); these tests
check what reaches the store, the 401 answer of a refused call, and the client IP resolution
behind trusted proxies (also as a Hypothesis property of `TrustedProxies`).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from types import ModuleType

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.gateway.app import Gateway
from protoc_gen_restmon.runtime.gateway.observe import CallInfo
from protoc_gen_restmon.runtime.monitor.access import TrustedProxies
from protoc_gen_restmon.runtime.monitor.keys import create_api_key
from protoc_gen_restmon.runtime.monitor.model import CallStatus, KeyType
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from tests.support.monitor_servers import (
    controlled_bookstore,
    final_record_sync,
    only,
    recorded,
    uvicorn_server,
)


@contextlib.contextmanager
def served(monitor: Monitor, pb: ModuleType) -> Iterator[httpx.Client]:
    """The example bookstore behind a monitored gateway, on uvicorn; an httpx client to it."""
    gateway = Gateway(services=[controlled_bookstore(pb)], monitor=monitor)
    with uvicorn_server(gateway) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture(name="monitor")
def fixture_monitor(store_url: str, bookstore_pb: ModuleType) -> Iterator[Monitor]:
    monitor = Monitor(store_url, packages=[bookstore_pb])
    try:
        yield monitor
    finally:
        monitor.close()


def test_gateway_call_is_recorded_with_its_http_details(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    with served(monitor, bookstore_pb) as client:
        reply = client.get("/v1/shelves/fiction", headers={"user-agent": "monitor-test/1"})
    assert reply.status_code == 200
    record = only(recorded(monitor))
    assert (record.service_name, record.method_name) == (
        "bookstore.v1.BookstoreService",
        "GetShelf",
    )
    assert (record.status, record.grpc_status_code) == (CallStatus.SUCCESS, "OK")
    assert (record.transport, record.http_method, record.http_path) == (
        "http",
        "GET",
        "/v1/shelves/fiction",
    )
    assert record.request_id == reply.headers["x-request-id"]
    assert (record.client_ip, record.user_agent) == ("127.0.0.1", "monitor-test/1")
    assert record.peer.startswith("127.0.0.1:")


def test_gateway_request_id_given_by_the_client_is_recorded(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    with served(monitor, bookstore_pb) as client:
        reply = client.get("/v1/shelves", headers={"x-request-id": "trace-42"})
    assert reply.headers["x-request-id"] == "trace-42"
    assert only(recorded(monitor)).request_id == "trace-42"


def test_gateway_handler_error_is_recorded_with_its_code(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    with served(monitor, bookstore_pb) as client:
        assert client.get("/v1/shelves/fail-5").status_code == 404
    record = only(recorded(monitor))
    assert (record.status, record.grpc_status_code) == (CallStatus.ERROR, "NOT_FOUND")
    assert "injected failure" in record.error_message


def test_gateway_refuses_a_call_without_key_with_401(
    store_url: str, bookstore_pb: ModuleType
) -> None:
    monitor = Monitor(store_url, require_keys=True)
    try:
        key, secret = create_api_key(monitor.store, "web", KeyType.WEBHOOK, user_id=3)
        with served(monitor, bookstore_pb) as client:
            refused = client.get("/v1/shelves/fiction")
            accepted = client.get("/v1/shelves/fiction", headers={"X-Api-Key": secret})
        assert refused.status_code == 401
        body = refused.json()
        assert body["code"] == 16 and "API key" in body["message"]
        assert accepted.status_code == 200
        first, second = recorded(monitor)
        assert (first.status, first.grpc_status_code, first.is_authenticated) == (
            CallStatus.ERROR,
            "UNAUTHENTICATED",
            False,
        )
        assert (second.status, second.api_key_id, second.user_id) == (
            CallStatus.SUCCESS,
            key.id,
            3,
        )
    finally:
        monitor.close()


def test_gateway_client_leaving_a_stream_is_recorded_as_cancelled(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    with (
        served(monitor, bookstore_pb) as client,
        client.stream("GET", "/v1/shelves/endless:watch") as reply,
    ):
        assert reply.status_code == 200
        first_line = next(reply.iter_lines())
        assert "endless" in first_line
        # Leaving the block closes the connection while the handler sleeps.
    record = final_record_sync(monitor, "WatchShelf")
    assert (record.status, record.grpc_status_code) == (CallStatus.CANCELLED, "CANCELLED")
    assert b'grpc_type="server_stream"' in monitor.metrics()


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        pytest.param(["127.0.0.1", "10.0.0.0/8"], "198.51.100.9", id="trusted-chain"),
        pytest.param(["127.0.0.1"], "10.1.2.3", id="inner-proxy-untrusted"),
        pytest.param([], "127.0.0.1", id="no-trusted-proxy"),
    ],
)
def test_gateway_client_ip_behind_trusted_proxies(
    store_url: str, bookstore_pb: ModuleType, trusted: list[str], expected: str
) -> None:
    monitor = Monitor(store_url, trusted_proxies=trusted)
    try:
        with served(monitor, bookstore_pb) as client:
            forwarded = {"x-forwarded-for": "198.51.100.9, 10.1.2.3"}
            assert client.get("/v1/shelves", headers=forwarded).status_code == 200
        assert only(recorded(monitor)).client_ip == expected
    finally:
        monitor.close()


# --- TrustedProxies, as a property ---

ADDRESSES = st.ip_addresses(v=4).map(str) | st.ip_addresses(v=6).map(str)


def info(peer: str, forwarded: list[str]) -> CallInfo:
    metadata = (("x-forwarded-for", ", ".join(forwarded)),) if forwarded else ()
    return CallInfo("s.S", "M", "http", "r", client_ip=peer, metadata=metadata)


@given(
    peer=ADDRESSES,
    hops=st.lists(ADDRESSES, max_size=6),
    trusted=st.sets(ADDRESSES, max_size=6),
)
def test_trusted_proxies_pick_the_rightmost_untrusted_hop(
    peer: str, hops: list[str], trusted: set[str]
) -> None:
    chain = [peer, *reversed(hops)]  # nearest first
    assume(len(set(chain)) == len(chain))
    client = TrustedProxies(trusted).client_ip(info(peer, hops))
    position = chain.index(client)
    # Every address between us and the client is a trusted proxy ...
    assert all(address in trusted for address in chain[:position])
    # ... and the client is not one, unless every hop was trusted (then: the farthest).
    assert client not in trusted or position == len(chain) - 1


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@given(peer=ADDRESSES, garbage=st.text(min_size=1).filter(lambda t: "," not in t))
def test_trusted_proxies_stop_at_a_hop_that_is_not_an_address(peer: str, garbage: str) -> None:
    assume(not is_address(garbage.strip()))
    client = TrustedProxies([peer]).client_ip(info(peer, [garbage]))
    assert client == peer
