"""The monitor when its store goes away mid-run, with real RPCs: calls keep succeeding, the
loss is counted and shown in health (also over the admin API), and recording resumes by
itself when the store is back.

How the store is taken away:
- SQLite: another connection holds the write lock (`BEGIN EXCLUSIVE`). File modes do not stop
  root and `chattr +i` needs a filesystem that supports it; a held lock works everywhere. In WAL
  mode readers are not blocked, so API keys can still be checked: only writes fail. The store is
  opened with a 100 ms busy timeout (instead of 5 s) so a refused batch is given up quickly.
- PostgreSQL: the server is stopped (`postgres.stop()`) and started again; nothing else is
  restarted. With the server down, API keys cannot be checked: a key verified shortly before
  is still accepted (the key cache), any other keyed call fails closed with UNAVAILABLE, and
  methods that need no key keep working.

The writer counts items (records, key uses) in `recorded` and `lost`: every call lost during
the outage adds at least one (its record) to `lost`, whatever the batching.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import httpx
import pytest
from grpclib.client import Channel
from grpclib.health.service import Health
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpclib.server import Server

from protoc_gen_restmon.runtime.admin.app import AdminApp
from protoc_gen_restmon.runtime.admin.auth import create_admin_token
from protoc_gen_restmon.runtime.admin.mount import with_admin
from protoc_gen_restmon.runtime.gateway.app import Gateway
from protoc_gen_restmon.runtime.monitor.model import CallStatus, Store
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from protoc_gen_restmon.runtime.monitor.stores import SqlStore
from protoc_gen_restmon.runtime.monitor.stores.sqlite import SqliteConnections
from tests.support.gateway_fixtures import make_test_service
from tests.support.monitor_fixtures import DatabasePool
from tests.support.monitor_load import (
    GET_SHELF,
    LIST_SHELVES,
    WAIT,
    Outcome,
    PlannedCall,
    grpc_client,
    issue_keys,
    rest_client,
    rest_server,
    stored_records,
)
from tests.support.postgres_server import PostgresServer
from tests.support.servers import free_port

BEFORE, DURING, AFTER = 10, 20, 10  # calls made before, during and after the outage
HEALTH = "/api/grpc/monitor/health/"


class Outage(Protocol):
    def begin(self) -> None: ...
    def end(self) -> None: ...


class SqliteLock:
    """Another connection holding the database's write lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._holder: sqlite3.Connection | None = None

    def begin(self) -> None:
        # begin and end may run on different threads (asyncio.to_thread): the holder is used
        # by one at a time.
        self._holder = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._holder.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        if self._holder is not None:
            self._holder.execute("ROLLBACK")
            self._holder.close()
            self._holder = None


@dataclass
class PostgresDown:
    server: PostgresServer
    down: bool = False

    def begin(self) -> None:
        self.server.stop()
        self.down = True

    def end(self) -> None:
        if self.down:
            self.server.start()
            self.down = False


@dataclass
class Stack:
    """A keyed monitor behind a grpclib server and the gateway + admin API on uvicorn."""

    monitor: Monitor
    pb: ModuleType
    grpc_port: int
    base: str  # the admin API's (and gateway's) URL
    admin_token: str
    secret: str  # an API key; cached by the monitor once a call has used it

    async def calls(self, label: str, count: int) -> list[Outcome]:
        """`count` keyed GetShelf calls, request ids `label-<n>`, from 5 concurrent clients:
        4 over gRPC, 1 over REST (through the gateway)."""
        plans = [
            [PlannedCall(GET_SHELF, self.secret, f"{label}-{n}") for n in range(c, count, 5)]
            for c in range(5)
        ]
        done = await asyncio.gather(
            *(grpc_client(self.grpc_port, self.pb, plan) for plan in plans[:4]),
            rest_client(self.base, plans[4]),
        )
        return [outcome for outcomes in done for outcome in outcomes]

    async def admin_health(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with httpx.AsyncClient(base_url=self.base, headers=headers) as client:
            reply = await client.get(HEALTH)
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        return answer

    async def settle(self) -> None:
        """Wait until the writer has taken everything queued and written or lost it (a
        refused batch is retried for ~1.6 s before it is counted as lost)."""
        assert await asyncio.to_thread(self.monitor.writer.flush, WAIT), "writer still busy"


@contextlib.asynccontextmanager
async def keyed_stack(monitor: Monitor, pb: ModuleType) -> AsyncIterator[Stack]:
    _, token = create_admin_token(monitor.store, "faults")
    [(_, secret)] = issue_keys(monitor.store, 1)
    gateway = Gateway(services=[make_test_service(pb)], monitor=monitor)
    server = Server([make_test_service(pb), Health()])
    monitor.attach(server)
    port = free_port()
    await server.start("127.0.0.1", port)
    try:
        with rest_server(with_admin(gateway, AdminApp(monitor))) as base:
            yield Stack(monitor, pb, port, base, token, secret)
    finally:
        server.close()
        await server.wait_closed()


def keyed_monitor(store: str | Store, pb: ModuleType, require: bool | list[str] = True) -> Monitor:
    # A long key cache: a key verified before the outage stays usable during it.
    return Monitor(store, packages=[pb], require_keys=require, key_cache_seconds=300)


def codes(outcomes: list[Outcome]) -> set[str]:
    return {o.code for o in outcomes}


async def outage_scenario(stack: Stack, outage: Outage, admin_during: bool) -> dict[str, Any]:
    """Calls before, during and after an outage; the health seen during it, with the writer's
    `last_error`."""
    assert codes(await stack.calls("before", BEFORE)) == {"OK"}
    await stack.settle()
    await asyncio.to_thread(outage.begin)
    try:
        assert codes(await stack.calls("during", DURING)) == {"OK"}
        await stack.settle()
        during = stack.monitor.health()
        if admin_during:
            assert await stack.admin_health() == during | {
                "uptime_seconds": pytest.approx(during["uptime_seconds"], abs=5)
            }
        during["last_error"] = stack.monitor.writer.last_error
    finally:
        await asyncio.to_thread(outage.end)
    assert codes(await stack.calls("after", AFTER)) == {"OK"}
    await stack.settle()
    return during


def assert_outage_accounted(stack: Stack, during: dict[str, Any], after: dict[str, Any]) -> None:
    lost = during["lost"]
    assert lost >= DURING  # each call's record at least
    assert (during["status"], during["store_ok"], during["dropped"]) == ("degraded", False, 0)
    # Back to writing, but the loss stays visible: it is never silent.
    assert (after["status"], after["store_ok"], after["lost"]) == ("degraded", True, lost)
    records = stored_records(stack.monitor.store)
    stored = {r.request_id: r.status for r in records}
    expected = {f"before-{n}" for n in range(BEFORE)} | {f"after-{n}" for n in range(AFTER)}
    assert stored == dict.fromkeys(expected, CallStatus.SUCCESS)
    [key] = stack.monitor.store.keys(None, None, None)
    assert key.request_count == BEFORE + AFTER  # the uses made during the outage were lost


# --- SQLite: the write lock is held by someone else ---


@pytest.fixture(name="sqlite_monitor")
def fixture_sqlite_monitor(tmp_path: Path, bookstore_pb: ModuleType) -> Iterator[Monitor]:
    store = SqlStore(SqliteConnections(tmp_path / "monitor.db", busy_timeout_ms=100))
    monitor = keyed_monitor(store, bookstore_pb)
    try:
        yield monitor
    finally:
        monitor.close()
        store.close()


def test_sqlite_locked_mid_run_loses_records_not_calls_then_resumes(
    sqlite_monitor: Monitor, bookstore_pb: ModuleType, tmp_path: Path
) -> None:
    outage = SqliteLock(tmp_path / "monitor.db")

    async def scenario() -> tuple[Stack, dict[str, Any], dict[str, Any]]:
        async with keyed_stack(sqlite_monitor, bookstore_pb) as stack:
            during = await outage_scenario(stack, outage, admin_during=True)
            return stack, during, await stack.admin_health()

    stack, during, after = asyncio.run(scenario())
    assert_outage_accounted(stack, during, after)
    assert "database is locked" in during["last_error"]


def test_sqlite_locked_keys_are_still_checked(
    sqlite_monitor: Monitor, bookstore_pb: ModuleType, tmp_path: Path
) -> None:
    """WAL readers are not blocked by a writer: a key never seen before is still verified
    (and its call succeeds) while the write lock is held; only its use is lost."""
    [(key, unseen)] = issue_keys(sqlite_monitor.store, 1)
    outage = SqliteLock(tmp_path / "monitor.db")

    async def scenario() -> list[Outcome]:
        async with keyed_stack(sqlite_monitor, bookstore_pb) as stack:
            outage.begin()
            try:
                outcomes = await one_call(stack, PlannedCall(GET_SHELF, unseen, "unseen"))
                await stack.settle()  # the write is given up while the lock is held
                return outcomes
            finally:
                outage.end()

    assert codes(asyncio.run(scenario())) == {"OK"}
    assert sqlite_monitor.writer.lost >= 1
    stored = sqlite_monitor.store.key(key.id)
    assert stored is not None and stored.request_count == 0


# --- PostgreSQL: the server stops mid-run and starts again ---


@pytest.fixture(name="postgres_url")
def fixture_postgres_url(postgres_databases: DatabasePool) -> Iterator[str]:
    name = postgres_databases.take()
    try:
        yield postgres_databases.server.dsn_for(name)
    finally:
        postgres_databases.give_back(name)


@pytest.fixture(name="postgres_down")
def fixture_postgres_down(postgres: PostgresServer) -> Iterator[PostgresDown]:
    """Stops the session's server on `begin()`; it is running again after the test."""
    outage = PostgresDown(postgres)
    try:
        yield outage
    finally:
        outage.end()


def test_postgres_stopped_mid_run_loses_records_not_calls_then_resumes(
    postgres_url: str, postgres_down: PostgresDown, bookstore_pb: ModuleType
) -> None:
    monitor = keyed_monitor(postgres_url, bookstore_pb)

    async def scenario() -> tuple[Stack, dict[str, Any], dict[str, Any]]:
        async with keyed_stack(monitor, bookstore_pb) as stack:
            during = await outage_scenario(stack, postgres_down, admin_during=False)
            return stack, during, await stack.admin_health()

    try:
        stack, during, after = asyncio.run(scenario())
        assert_outage_accounted(stack, during, after)
        assert "connection" in during["last_error"].lower()
    finally:
        monitor.close()


def test_postgres_down_keys_fail_closed_unless_cached_public_methods_work(
    postgres_url: str, postgres_down: PostgresDown, bookstore_pb: ModuleType
) -> None:
    """Only GetShelf needs a key. With the server down: the key verified before still works
    (cached), a key never seen is UNAVAILABLE (not UNAUTHENTICATED: it may well be valid),
    keyless methods and the health service answer. Once the server is back, the new key works."""
    monitor = keyed_monitor(
        postgres_url, bookstore_pb, [f"/bookstore.v1.BookstoreService/{GET_SHELF}"]
    )
    [(_, unseen)] = issue_keys(monitor.store, 1)

    async def scenario() -> dict[str, list[Outcome]]:
        async with keyed_stack(monitor, bookstore_pb) as stack:
            await stack.calls("warm", 1)
            await asyncio.to_thread(postgres_down.begin)
            down = {
                "cached": await stack.calls("cached", 3),
                "unseen": await one_call(stack, PlannedCall(GET_SHELF, unseen, "unseen")),
                "keyless": await one_call(stack, PlannedCall(LIST_SHELVES, None, "keyless")),
                "health": [await health_check(stack.grpc_port)],
            }
            await asyncio.to_thread(postgres_down.end)
            down["back"] = await one_call(stack, PlannedCall(GET_SHELF, unseen, "back"))
            return down

    try:
        seen = asyncio.run(scenario())
    finally:
        monitor.close()
    assert {name: codes(outcomes) for name, outcomes in seen.items()} == {
        "cached": {"OK"},
        "unseen": {"UNAVAILABLE"},
        "keyless": {"OK"},
        "health": {"OK"},
        "back": {"OK"},
    }
    assert seen["unseen"][0].message == "API keys cannot be checked right now"


async def one_call(stack: Stack, call: PlannedCall) -> list[Outcome]:
    return await grpc_client(stack.grpc_port, stack.pb, [call])


async def health_check(port: int) -> Outcome:
    channel = Channel("127.0.0.1", port)
    try:
        reply = await HealthStub(channel).Check(HealthCheckRequest())
    finally:
        channel.close()
    code = "OK" if reply.status == HealthCheckResponse.SERVING else "NOT_SERVING"
    return Outcome(PlannedCall("Check", None, ""), code, "")


def test_postgres_down_admin_health_still_reports_degraded(
    postgres_url: str, postgres_down: PostgresDown, bookstore_pb: ModuleType
) -> None:
    monitor = keyed_monitor(postgres_url, bookstore_pb)

    async def scenario() -> dict[str, Any]:
        async with keyed_stack(monitor, bookstore_pb) as stack:
            assert (await stack.admin_health())["status"] == "healthy"  # token verified once
            await stack.calls("warm", 1)  # the key is cached: the next call is accepted
            await stack.settle()
            await asyncio.to_thread(postgres_down.begin)
            await stack.calls("during", 1)
            await stack.settle()
            return await stack.admin_health()

    try:
        health = asyncio.run(scenario())
    finally:
        monitor.close()
    assert (health["status"], health["store_ok"]) == ("degraded", False)


def test_postgres_down_anonymous_admin_request_learns_nothing_of_the_store(
    postgres_url: str, postgres_down: PostgresDown, bookstore_pb: ModuleType
) -> None:
    monitor = keyed_monitor(postgres_url, bookstore_pb)

    async def scenario() -> httpx.Response:
        async with keyed_stack(monitor, bookstore_pb) as stack:
            await asyncio.to_thread(postgres_down.begin)
            headers = {"Authorization": "Bearer rma_a-guess"}
            async with httpx.AsyncClient(base_url=stack.base, headers=headers) as client:
                return await client.get(HEALTH)

    try:
        reply = asyncio.run(scenario())
    finally:
        monitor.close()
    assert reply.status_code in (401, 503)
    assert str(postgres_down.server.port) not in reply.text
