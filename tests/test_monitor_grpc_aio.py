"""The Monitor's grpc.aio interceptor on a real grpc.aio server, called by grpc.aio clients.

The server hosts the raw-bytes `test.Echo` service of tests/support/monitor_servers.py (one method
per cardinality); each test runs its scenario on a fresh event loop against a fresh store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]
import pytest

from protoc_gen_restmon.runtime.monitor.keys import create_api_key
from protoc_gen_restmon.runtime.monitor.model import CallStatus, KeyType
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from tests.support.gateway_fixtures import UUID
from tests.support.monitor_servers import (
    WAIT,
    Echo,
    closing,
    final_record,
    grpc_aio_server,
    only,
    recorded,
)

SERVICE = "test.Echo"


@pytest.fixture(name="monitor")
def fixture_monitor(store_url: str) -> Iterator[Monitor]:
    monitor = Monitor(store_url)
    try:
        yield monitor
    finally:
        monitor.close()


def unary(channel: grpc.aio.Channel, method: str = "Unary") -> Any:
    return channel.unary_unary(f"/{SERVICE}/{method}")


async def call_unary(monitor: Monitor, request: bytes, **kw: Any) -> bytes:
    async with grpc_aio_server(monitor, Echo()) as channel:
        response: bytes = await unary(channel)(request, **kw)
        return response


def test_grpc_aio_success_is_recorded_with_its_call_details(monitor: Monitor) -> None:
    metadata = (("x-request-id", "aio-1"),)
    assert asyncio.run(call_unary(monitor, b"hi", metadata=metadata)) == b"echo:hi"
    record = only(recorded(monitor))
    assert (record.service_name, record.method_name) == (SERVICE, "Unary")
    assert (record.status, record.grpc_status_code) == (CallStatus.SUCCESS, "OK")
    assert (record.transport, record.request_id, record.client_ip) == ("grpc", "aio-1", "127.0.0.1")
    assert record.peer.startswith("127.0.0.1:")
    assert record.user_agent.startswith("grpc-python")
    assert monitor.registered_services() == [SERVICE]


@pytest.mark.parametrize(
    ("request_bytes", "code", "fragment"),
    [
        pytest.param(b"fail", "NOT_FOUND", "no such thing", id="abort"),
        pytest.param(b"crash", "UNKNOWN", "RuntimeError: the echo broke", id="plain-exception"),
        pytest.param(b"abort-cancelled", "NOT_FOUND", "no such thing", id="cancelled-in-abort"),
    ],
)
def test_grpc_aio_failure_is_recorded_as_error(
    monitor: Monitor, request_bytes: bytes, code: str, fragment: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        asyncio.run(call_unary(monitor, request_bytes))
    assert raised.value.code().name == code
    record = only(recorded(monitor))
    assert (record.status, record.grpc_status_code) == (CallStatus.ERROR, code)
    assert fragment in record.error_message


async def unary_trailers(
    monitor: Monitor, request: bytes, metadata: tuple[tuple[str, str], ...]
) -> tuple[str, dict[str, str]]:
    """The code's name and the trailing metadata of a Unary call."""
    async with grpc_aio_server(monitor, Echo()) as channel:
        call = unary(channel)(request, metadata=metadata)
        try:
            await call
        except grpc.aio.AioRpcError as error:
            return error.code().name, dict(error.trailing_metadata() or ())
        return "OK", dict(await call.trailing_metadata() or ())


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        pytest.param(b"hi", "OK", id="answered"),
        pytest.param(b"fail", "NOT_FOUND", id="abort"),
        pytest.param(b"crash", "UNKNOWN", id="handler-crash"),
        pytest.param(b"trailers", "OK", id="handler-trailers"),
    ],
)
@pytest.mark.parametrize("given", ["aio-7", None, "r" * 129], ids=["given", "none", "unfit"])
def test_grpc_aio_request_id_is_recorded_and_echoed_in_the_trailers(
    store_url: str, request_bytes: bytes, code: str, given: str | None
) -> None:
    metadata = (("x-request-id", given),) if given else ()
    with closing(Monitor(store_url, echo_grpc_request_id=True)) as monitor:
        answered, trailers = asyncio.run(unary_trailers(monitor, request_bytes, metadata))
        assert answered == code
        echoed = trailers["x-request-id"]
        assert only(recorded(monitor)).request_id == echoed
    if given == "aio-7":
        assert echoed == given
    else:  # made by the monitor: a UUID version 7
        assert UUID.fullmatch(echoed)
    if request_bytes == b"trailers":  # the handler's own trailers are kept
        assert trailers["x-handler"] == "own"


@pytest.mark.parametrize("request_bytes", [b"hi", b"trailers"], ids=["plain", "handler-trailers"])
def test_grpc_aio_request_id_is_recorded_not_echoed_by_default(
    monitor: Monitor, request_bytes: bytes
) -> None:
    metadata = (("x-request-id", "aio-8"),)
    answered, trailers = asyncio.run(unary_trailers(monitor, request_bytes, metadata))
    assert (answered, "x-request-id" in trailers) == ("OK", False)
    assert only(recorded(monitor)).request_id == "aio-8"


def test_grpc_aio_expired_deadline_is_recorded_as_timeout(monitor: Monitor) -> None:
    async def scenario() -> Any:
        async with grpc_aio_server(monitor, Echo()) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await unary(channel)(b"slow", timeout=0.2)
            assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            return await final_record(monitor, "Unary")

    record = asyncio.run(scenario())
    assert (record.status, record.grpc_status_code) == (CallStatus.TIMEOUT, "DEADLINE_EXCEEDED")


@pytest.mark.parametrize("timeout", [None, 30.0], ids=["no-deadline", "far-deadline"])
def test_grpc_aio_client_cancelling_is_recorded_as_cancelled(
    monitor: Monitor, timeout: float | None
) -> None:
    echo = Echo()

    async def scenario() -> Any:
        async with grpc_aio_server(monitor, echo) as channel:
            call = unary(channel)(b"gate", timeout=timeout)
            await asyncio.wait_for(echo.gate.entered.wait(), WAIT)
            call.cancel()
            await asyncio.wait_for(echo.gate.exited.wait(), WAIT)
            return await final_record(monitor, "Unary")

    record = asyncio.run(scenario())
    assert (record.status, record.grpc_status_code) == (CallStatus.CANCELLED, "CANCELLED")


def test_grpc_aio_call_in_flight_is_pending_then_final(monitor: Monitor) -> None:
    echo = Echo()

    async def scenario() -> tuple[Any, Any]:
        async with grpc_aio_server(monitor, echo) as channel:
            call = unary(channel)(b"gate")
            await asyncio.wait_for(echo.gate.entered.wait(), WAIT)
            pending = only(await asyncio.to_thread(recorded, monitor, settle=False))
            echo.gate.release.set()
            assert await call == b"echo:gate"
            return pending, only(await asyncio.to_thread(recorded, monitor))

    pending, final = asyncio.run(scenario())
    assert (pending.status, pending.duration_ms) == (CallStatus.PENDING, None)
    assert (final.call_id, final.status) == (pending.call_id, CallStatus.SUCCESS)


def test_grpc_aio_streams_of_every_cardinality_are_recorded(monitor: Monitor) -> None:
    echo = Echo()

    async def requests() -> AsyncIterator[bytes]:
        yield b"first"
        # Sent only once the handler has the first: a buffering monitor would deadlock.
        assert await asyncio.wait_for(echo.arrived.get(), WAIT) == b"first"
        yield b"second"

    async def scenario() -> tuple[bytes, list[bytes], list[bytes]]:
        async with grpc_aio_server(monitor, echo) as channel:
            counted = await channel.stream_unary(f"/{SERVICE}/ClientStream")(requests())
            streamed = [m async for m in channel.unary_stream(f"/{SERVICE}/ServerStream")(b"s")]
            bidi = [m async for m in channel.stream_stream(f"/{SERVICE}/Bidi")(iter([b"a", b"b"]))]
            return counted, streamed, bidi

    assert asyncio.run(scenario()) == (b"2", [b"s0", b"s1", b"s2"], [b"a", b"b"])
    assert sorted((r.method_name, r.status) for r in recorded(monitor)) == [
        ("Bidi", CallStatus.SUCCESS),
        ("ClientStream", CallStatus.SUCCESS),
        ("ServerStream", CallStatus.SUCCESS),
    ]
    text = monitor.metrics().decode()
    for method, kind in [
        ("ClientStream", "client_stream"),
        ("ServerStream", "server_stream"),
        ("Bidi", "bidi_stream"),
    ]:
        assert f'grpc_method="{method}",grpc_service="{SERVICE}",grpc_type="{kind}"' in text


def test_grpc_aio_stream_failing_after_messages_is_recorded_as_error(monitor: Monitor) -> None:
    async def scenario() -> list[bytes]:
        received: list[bytes] = []
        async with grpc_aio_server(monitor, Echo()) as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                async for message in channel.unary_stream(f"/{SERVICE}/ServerStream")(b"fail"):
                    received.append(message)
        return received

    assert asyncio.run(scenario()) == [b"fail0", b"fail1", b"fail2"]
    record = only(recorded(monitor))
    assert (record.status, record.grpc_status_code) == (CallStatus.ERROR, "NOT_FOUND")


def test_grpc_aio_key_checks(store_url: str) -> None:
    monitor = Monitor(store_url, require_keys=[SERVICE], echo_grpc_request_id=True)
    try:
        key, secret = create_api_key(monitor.store, "svc", KeyType.INTERNAL, username="bot")
        echo = Echo()

        async def scenario() -> grpc.StatusCode:
            async with grpc_aio_server(monitor, echo) as channel:
                assert await unary(channel)(b"k", metadata=(("x-api-key", secret),)) == b"echo:k"
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await unary(channel)(b"gate")  # refused before the handler: no gate wait
                code: grpc.StatusCode = raised.value.code()
                return code

        assert asyncio.run(scenario()) is grpc.StatusCode.UNAUTHENTICATED
        assert not echo.gate.entered.is_set()
        first, second = recorded(monitor)
        assert (first.status, first.api_key_id, first.username) == (
            CallStatus.SUCCESS,
            key.id,
            "bot",
        )
        assert (second.status, second.grpc_status_code) == (CallStatus.ERROR, "UNAUTHENTICATED")
        refused = (("x-request-id", "refused-1"),)
        answered = asyncio.run(unary_trailers(monitor, b"k", refused))
        assert answered == ("UNAUTHENTICATED", {"x-request-id": "refused-1"})
    finally:
        monitor.close()
