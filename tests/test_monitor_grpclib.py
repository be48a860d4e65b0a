"""The Monitor on a real grpclib server, called by a real grpclib client over loopback.

Every scenario runs with both ways of attaching: wrapped handlers (`attach(server)`) and the
RecvRequest event (`attach(server, events=True)`).

Each test runs one scenario on a fresh event loop (`asyncio.run`), against a fresh store
(`store_url`: SQLite and PostgreSQL), and reads what was stored after flushing the writer.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import pytest
from grpclib import GRPCError
from grpclib.const import Cardinality, Status
from grpclib.health.service import Health
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from protoc_gen_restmon.runtime.monitor.keys import create_api_key
from protoc_gen_restmon.runtime.monitor.model import CallStatus, KeyType
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from protoc_gen_restmon.runtime.status import Code, RpcError
from tests.support.gateway_fixtures import UUID
from tests.support.monitor_servers import (
    WAIT,
    closing,
    controlled_bookstore,
    final_record,
    grpclib_server,
    only,
    recorded,
)

GET_SHELF = "GetShelf"


def generated_monitor(pb: ModuleType) -> Any:
    """The generated hook class of the example service."""
    return importlib.import_module(f"{pb.__name__}._restmon_monitor").BookstoreServiceMonitor


@pytest.fixture(autouse=True, params=[False, True], ids=["handlers", "events"])
def attach_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scenario twice: with the handlers wrapped, and attached through RecvRequest."""
    attach = Monitor.attach

    def attach_in_mode(self: Monitor, server: Any) -> None:
        attach(self, server, events=request.param)

    monkeypatch.setattr(Monitor, "attach", attach_in_mode)


@pytest.fixture(name="monitor")
def fixture_monitor(store_url: str, bookstore_pb: ModuleType) -> Iterator[Monitor]:
    monitor = Monitor(store_url, packages=[bookstore_pb])
    try:
        yield monitor
    finally:
        monitor.close()


async def get_shelf(pb: ModuleType, service: Any, monitor: Monitor, shelf: str, **kw: Any) -> Any:
    async with grpclib_server(monitor, service) as channel:
        return await pb.BookstoreServiceStub(channel).get_shelf(
            pb.GetShelfRequest(shelf=shelf), **kw
        )


def test_grpclib_success_is_recorded_with_its_call_details(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    service = controlled_bookstore(bookstore_pb)
    shelf = asyncio.run(
        get_shelf(bookstore_pb, service, monitor, "fiction", metadata={"x-request-id": "req-1"})
    )
    assert shelf.name == "shelves/fiction"
    record = only(recorded(monitor))
    assert (record.status, record.grpc_status_code) == (CallStatus.SUCCESS, "OK")
    assert (record.service_name, record.method_name) == ("bookstore.v1.BookstoreService", GET_SHELF)
    assert record.transport == "grpc"
    assert record.request_id == "req-1"
    assert record.client_ip == "127.0.0.1"
    assert record.peer.startswith("127.0.0.1:")
    assert "grpc-python-grpclib" in record.user_agent
    assert record.duration_ms is not None and record.duration_ms >= 0
    assert record.created_at.tzinfo is not None
    assert not record.is_authenticated


async def get_shelf_trailers(
    pb: ModuleType, monitor: Monitor, shelf: str, metadata: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """GetShelf on a raw grpclib stream: the code's name and the trailing metadata."""
    async with grpclib_server(monitor, controlled_bookstore(pb)) as channel:
        path = f"/bookstore.v1.BookstoreService/{GET_SHELF}"
        request = channel.request(
            path, Cardinality.UNARY_UNARY, pb.GetShelfRequest, pb.Shelf, metadata=metadata
        )
        async with request as stream:
            await stream.send_message(pb.GetShelfRequest(shelf=shelf), end=True)
            try:
                await stream.recv_message()
                await stream.recv_trailing_metadata()
                code = "OK"
            except GRPCError as error:
                code = error.status.name
            return code, dict(stream.trailing_metadata or {})


TOO_LONG = "r" * 129  # longer than a request id may be: replaced, not echoed


@pytest.fixture(name="echoing")
def fixture_echoing(store_url: str, bookstore_pb: ModuleType) -> Iterator[Monitor]:
    with closing(Monitor(store_url, packages=[bookstore_pb], echo_grpc_request_id=True)) as monitor:
        yield monitor


@pytest.mark.parametrize(
    ("shelf", "code"),
    [
        pytest.param("fiction", "OK", id="answered"),
        pytest.param("fail-5", "NOT_FOUND", id="grpc-error"),
        pytest.param("crash", "UNKNOWN", id="handler-crash"),
    ],
)
@pytest.mark.parametrize("given", ["req-7", None, TOO_LONG], ids=["given", "none", "unfit"])
def test_grpclib_request_id_is_recorded_and_echoed_in_the_trailers(
    echoing: Monitor, bookstore_pb: ModuleType, shelf: str, code: str, given: str | None
) -> None:
    metadata = {"x-request-id": given} if given else {}
    answered = asyncio.run(get_shelf_trailers(bookstore_pb, echoing, shelf, metadata))
    assert answered[0] == code
    echoed = answered[1]["x-request-id"]
    assert only(recorded(echoing)).request_id == echoed
    if given == "req-7":
        assert echoed == given
    else:  # made by the monitor: a UUID version 7
        assert UUID.fullmatch(echoed)


@pytest.mark.parametrize("given", ["req-8", None, TOO_LONG], ids=["given", "none", "unfit"])
def test_grpclib_request_id_is_recorded_not_echoed_by_default(
    monitor: Monitor, bookstore_pb: ModuleType, given: str | None
) -> None:
    metadata = {"x-request-id": given} if given else {}
    answered = asyncio.run(get_shelf_trailers(bookstore_pb, monitor, "fiction", metadata))
    assert answered == ("OK", {})
    request_id = only(recorded(monitor)).request_id
    if given == "req-8":
        assert request_id == given
    else:  # made by the monitor: a UUID version 7, dated when the call started
        assert UUID.fullmatch(request_id)
        created_ms = int(only(recorded(monitor)).created_at.timestamp() * 1000)
        # (to the millisecond, give or take the rounding of microseconds and floats)
        assert abs(created_ms - (uuid.UUID(request_id).int >> 80)) <= 1


@pytest.mark.parametrize(
    ("shelf", "code", "fragment"),
    [
        pytest.param("fail-5", "NOT_FOUND", "injected failure with code 5", id="grpc-error"),
        pytest.param("fail-9", "FAILED_PRECONDITION", "code 9", id="grpc-error-9"),
        pytest.param("crash", "UNKNOWN", "RuntimeError: password", id="plain-exception"),
    ],
)
def test_grpclib_handler_failure_is_recorded_as_error(
    monitor: Monitor, bookstore_pb: ModuleType, shelf: str, code: str, fragment: str
) -> None:
    service = controlled_bookstore(bookstore_pb)
    with pytest.raises(GRPCError) as raised:
        asyncio.run(get_shelf(bookstore_pb, service, monitor, shelf))
    assert raised.value.status.name == code
    record = only(recorded(monitor))
    assert (record.status, record.grpc_status_code) == (CallStatus.ERROR, code)
    assert fragment in record.error_message


def test_grpclib_expired_deadline_is_recorded_as_timeout(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    service = controlled_bookstore(bookstore_pb)

    async def scenario() -> Any:
        async with grpclib_server(monitor, service) as channel:
            stub = bookstore_pb.BookstoreServiceStub(channel)
            with pytest.raises((asyncio.TimeoutError, GRPCError)):
                await stub.get_shelf(bookstore_pb.GetShelfRequest(shelf="slow"), timeout=0.2)
            return await final_record(monitor, GET_SHELF)

    record = asyncio.run(scenario())
    assert (record.status, record.grpc_status_code) == (CallStatus.TIMEOUT, "DEADLINE_EXCEEDED")
    assert record.duration_ms is not None and 150 <= record.duration_ms < WAIT * 1000


@pytest.mark.parametrize("timeout", [None, 30.0], ids=["no-deadline", "far-deadline"])
def test_grpclib_client_cancelling_is_recorded_as_cancelled(
    monitor: Monitor, bookstore_pb: ModuleType, timeout: float | None
) -> None:
    service = controlled_bookstore(bookstore_pb)

    async def scenario() -> Any:
        async with grpclib_server(monitor, service) as channel:
            stub = bookstore_pb.BookstoreServiceStub(channel)
            request = bookstore_pb.GetShelfRequest(shelf="gate")
            call = asyncio.create_task(stub.get_shelf(request, timeout=timeout))
            await asyncio.wait_for(service.gate.entered.wait(), WAIT)
            call.cancel()
            await asyncio.wait_for(service.gate.exited.wait(), WAIT)
            return await final_record(monitor, GET_SHELF)

    record = asyncio.run(scenario())
    assert (record.status, record.grpc_status_code) == (CallStatus.CANCELLED, "CANCELLED")


def test_grpclib_call_in_flight_is_pending_then_final(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    service = controlled_bookstore(bookstore_pb)

    running: tuple[int, bool] = (0, True)

    async def scenario() -> tuple[Any, Any]:
        nonlocal running
        async with grpclib_server(monitor, service) as channel:
            stub = bookstore_pb.BookstoreServiceStub(channel)
            call = asyncio.create_task(stub.get_shelf(bookstore_pb.GetShelfRequest(shelf="gate")))
            await asyncio.wait_for(service.gate.entered.wait(), WAIT)
            pending = only(await asyncio.to_thread(recorded, monitor, settle=False))
            running = monitor.in_flight(), await asyncio.to_thread(monitor.settle, 0.05)
            service.gate.release.set()
            await call
            return pending, only(await asyncio.to_thread(recorded, monitor))

    pending, final = asyncio.run(scenario())
    assert running == (1, False)  # settle gives up while the call runs
    assert monitor.in_flight() == 0
    assert (pending.status, pending.grpc_status_code, pending.duration_ms) == (
        CallStatus.PENDING,
        "",
        None,
    )
    assert final.call_id == pending.call_id
    assert final.status is CallStatus.SUCCESS


def test_grpclib_client_stream_reaches_the_handler_unbuffered(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    """The client sends its second book only after the handler got the first one: a monitor
    that buffered the stream would deadlock here."""
    service = controlled_bookstore(bookstore_pb)

    async def books() -> Any:
        yield bookstore_pb.Book(title="first")
        assert await asyncio.wait_for(service.arrived.get(), WAIT) == "first"
        yield bookstore_pb.Book(title="second")

    async def scenario() -> Any:
        async with grpclib_server(monitor, service) as channel:
            return await bookstore_pb.BookstoreServiceStub(channel).import_books(books())

    assert asyncio.run(scenario()).imported_count == 2
    record = only(recorded(monitor))
    assert (record.method_name, record.status) == ("ImportBooks", CallStatus.SUCCESS)
    assert b'grpc_type="client_stream"' in monitor.metrics()


# --- API keys ---


@pytest.fixture(name="keyed")
def fixture_keyed(store_url: str, bookstore_pb: ModuleType) -> Iterator[Monitor]:
    monitor = Monitor(store_url, packages=[bookstore_pb], require_keys=True, key_cache_seconds=0)
    try:
        yield monitor
    finally:
        monitor.close()


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        pytest.param(None, "missing", id="missing"),
        pytest.param("rm_not-a-key", "unknown", id="unknown"),
        pytest.param("revoked", "revoked", id="revoked"),
        pytest.param("expired", "expired", id="expired"),
    ],
)
def test_grpclib_bad_key_is_refused_before_the_handler(
    keyed: Monitor, bookstore_pb: ModuleType, given: str | None, reason: str
) -> None:
    if given == "revoked":
        key, given = create_api_key(keyed.store, "gone", KeyType.SERVICE)
        assert keyed.store.revoke_key(key.id)
    elif given == "expired":
        past = datetime.now(timezone.utc) - timedelta(minutes=1)
        _, given = create_api_key(keyed.store, "old", KeyType.CLI, expires_at=past)
    service = controlled_bookstore(bookstore_pb)
    metadata = {"x-api-key": given} if given else None
    with pytest.raises(GRPCError) as raised:
        asyncio.run(get_shelf(bookstore_pb, service, keyed, "fiction", metadata=metadata))
    assert raised.value.status is Status.UNAUTHENTICATED
    assert reason in (raised.value.message or "")
    assert service.received == []
    record = only(recorded(keyed))
    assert (record.status, record.grpc_status_code) == (CallStatus.ERROR, "UNAUTHENTICATED")
    assert reason in record.error_message


def test_grpclib_refused_call_echoes_its_request_id(
    store_url: str, bookstore_pb: ModuleType
) -> None:
    monitor = Monitor(
        store_url, packages=[bookstore_pb], require_keys=True, echo_grpc_request_id=True
    )
    with closing(monitor) as keyed:
        metadata = {"x-request-id": "refused-1"}
        answered = asyncio.run(get_shelf_trailers(bookstore_pb, keyed, "fiction", metadata))
        assert answered == ("UNAUTHENTICATED", {"x-request-id": "refused-1"})
        assert only(recorded(keyed)).request_id == "refused-1"


def test_grpclib_valid_key_is_recorded_with_its_user(
    keyed: Monitor, bookstore_pb: ModuleType
) -> None:
    key, secret = create_api_key(
        keyed.store, "ci", KeyType.SERVICE, user_id=7, username="ada", user_email="a@x"
    )
    service = controlled_bookstore(bookstore_pb)
    for _ in range(2):
        asyncio.run(
            get_shelf(bookstore_pb, service, keyed, "fiction", metadata={"x-api-key": secret})
        )
    records = recorded(keyed)
    assert [r.status for r in records] == [CallStatus.SUCCESS] * 2
    record = records[0]
    assert (record.api_key_id, record.api_key_name) == (key.id, "ci")
    assert (record.user_id, record.username, record.is_authenticated) == (7, "ada", True)
    stored = keyed.store.key(key.id)
    assert stored is not None and stored.request_count == 2


def test_grpclib_keys_required_for_listed_methods_only(
    store_url: str, bookstore_pb: ModuleType
) -> None:
    monitor = Monitor(store_url, require_keys=["/bookstore.v1.BookstoreService/GetShelf"])
    try:
        service = controlled_bookstore(bookstore_pb)

        async def scenario() -> None:
            async with grpclib_server(monitor, service) as channel:
                stub = bookstore_pb.BookstoreServiceStub(channel)
                await stub.list_shelves(bookstore_pb.ListShelvesRequest())
                with pytest.raises(GRPCError):
                    await stub.get_shelf(bookstore_pb.GetShelfRequest(shelf="fiction"))

        asyncio.run(scenario())
        assert [(r.method_name, r.grpc_status_code) for r in recorded(monitor)] == [
            ("ListShelves", "OK"),
            (GET_SHELF, "UNAUTHENTICATED"),
        ]
    finally:
        monitor.close()


def test_grpclib_health_stays_public_when_keys_are_required(keyed: Monitor) -> None:
    async def scenario() -> Any:
        async with grpclib_server(keyed, Health()) as channel:
            return await HealthStub(channel).Check(HealthCheckRequest())

    assert asyncio.run(scenario()).status == HealthCheckResponse.SERVING
    record = only(recorded(keyed))
    assert (record.service_name, record.status) == ("grpc.health.v1.Health", CallStatus.SUCCESS)
    assert "grpc.health.v1.Health" in keyed.registered_services()


def test_grpclib_keys_fail_closed_when_the_store_is_down(
    keyed: Monitor, bookstore_pb: ModuleType
) -> None:
    _, secret = create_api_key(keyed.store, "ci", KeyType.SERVICE)
    keyed.store.close()
    service = controlled_bookstore(bookstore_pb)
    with pytest.raises(GRPCError) as raised:
        asyncio.run(
            get_shelf(bookstore_pb, service, keyed, "fiction", metadata={"x-api-key": secret})
        )
    assert raised.value.status is Status.UNAVAILABLE
    assert service.received == []
    assert keyed.health()["internal_errors"] == 1


# --- Hooks ---


def test_grpclib_hook_labels_and_vetoes(store_url: str, bookstore_pb: ModuleType) -> None:
    generated = generated_monitor(bookstore_pb)

    class Tenants(generated):  # type: ignore[misc,valid-type]
        def get_shelf(self, call: Any) -> None:
            tenant = call.info.get("x-tenant")
            if tenant is None:
                raise RpcError(Code.PERMISSION_DENIED, "x-tenant is required")
            call.labels["tenant"] = tenant

    monitor = Monitor(store_url, hooks=[Tenants()])
    try:
        service = controlled_bookstore(bookstore_pb)
        asyncio.run(
            get_shelf(bookstore_pb, service, monitor, "fiction", metadata={"x-tenant": "acme"})
        )
        with pytest.raises(GRPCError) as raised:
            asyncio.run(get_shelf(bookstore_pb, service, monitor, "fiction"))
        assert raised.value.status is Status.PERMISSION_DENIED
        assert [(r.grpc_status_code, r.labels) for r in recorded(monitor)] == [
            ("OK", (("tenant", "acme"),)),
            ("PERMISSION_DENIED", ()),
        ]
        assert len(service.received) == 1
    finally:
        monitor.close()


def test_grpclib_broken_hook_is_counted_and_the_call_goes_on(
    store_url: str, bookstore_pb: ModuleType
) -> None:
    generated = generated_monitor(bookstore_pb)

    class Broken(generated):  # type: ignore[misc,valid-type]
        def get_shelf(self, call: Any) -> None:
            raise KeyError("a bug in the hook")

    monitor = Monitor(store_url, hooks=[Broken()])
    try:
        service = controlled_bookstore(bookstore_pb)
        shelf = asyncio.run(get_shelf(bookstore_pb, service, monitor, "fiction"))
        assert shelf.name == "shelves/fiction"
        assert only(recorded(monitor)).status is CallStatus.SUCCESS
        assert monitor.health()["internal_errors"] == 1
    finally:
        monitor.close()


def test_monitor_refuses_bad_configuration(tmp_path: Any, bookstore_pb: ModuleType) -> None:
    generated = generated_monitor(bookstore_pb)

    class One(generated):  # type: ignore[misc,valid-type]
        def get_shelf(self, call: Any) -> None:
            return None

    store = f"sqlite:///{tmp_path / 'never.db'}"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"require_keys": ["/bookstore.v1.BookstoreService"]}, "is not /package.Service/Method"),
        ({"require_keys": ["bookstore.v1/Bookstore"]}, "is not package.Service"),
        ({"require_keys": [""]}, "is not package.Service"),
        ({"hooks": [One(), One()]}, "two hooks for /bookstore.v1.BookstoreService/GetShelf"),
        ({"trusted_proxies": ["not-an-address"]}, "does not appear to be"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            Monitor(store, **options)
    assert not (tmp_path / "never.db").exists()  # refused before the store was opened
