"""The monitor under concurrent load: 50 real clients, 2,000 calls with API keys, every call
logged once and every key's `request_count` exact, on SQLite and on PostgreSQL.

40 grpclib clients (each on its own channel to a monitored grpclib server) and 10 HTTP clients
(each with its own httpx pool, through the monitored REST gateway on uvicorn) run at once, each
making 40 calls one after another with one of 5 keys; one call in 25 carries a wrong key and is
refused. The store is read only after the writer has flushed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from types import ModuleType

import pytest

from protoc_gen_restmon.runtime.gateway.app import Gateway
from protoc_gen_restmon.runtime.monitor.keys import generate_key
from protoc_gen_restmon.runtime.monitor.model import CallStatus
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from tests.support.gateway_fixtures import make_test_service
from tests.support.monitor_load import (
    GET_SHELF,
    LIST_SHELVES,
    WAIT,
    Outcome,
    PlannedCall,
    grpc_client,
    grpclib_port,
    issue_keys,
    rest_client,
    rest_server,
    stored_count,
    stored_records,
)

KEYS = 5
GRPC_CLIENTS, REST_CLIENTS = 40, 10  # 50 concurrent clients
CALLS_PER_CLIENT = 40  # 2,000 calls in all
WRONG_KEY_EVERY = 25  # one call in 25 sends a key nobody issued


@pytest.fixture(name="monitor")
def fixture_monitor(store_url: str, bookstore_pb: ModuleType) -> Iterator[Monitor]:
    monitor = Monitor(store_url, packages=[bookstore_pb], require_keys=True)
    try:
        yield monitor
    finally:
        monitor.close()


def plan_calls(client: int, secrets: list[str], wrong: str) -> list[PlannedCall]:
    """Client `client`'s calls: methods alternate, keys rotate, some keys are wrong."""
    plan = []
    for n in range(CALLS_PER_CLIENT):
        secret = (
            wrong if n % WRONG_KEY_EVERY == WRONG_KEY_EVERY - 1 else secrets[(client + n) % KEYS]
        )
        method = GET_SHELF if n % 2 == 0 else LIST_SHELVES
        plan.append(PlannedCall(method, secret, f"load-{client}-{n}"))
    return plan


async def fifty_clients(
    monitor: Monitor, pb: ModuleType, plans: list[list[PlannedCall]]
) -> list[Outcome]:
    """Every client at once: the first GRPC_CLIENTS plans over gRPC, the rest over REST."""
    gateway = Gateway(services=[make_test_service(pb)], monitor=monitor)
    async with grpclib_port(monitor, make_test_service(pb)) as port:
        with rest_server(gateway) as base:
            done = await asyncio.gather(
                *(grpc_client(port, pb, plan) for plan in plans[:GRPC_CLIENTS]),
                *(rest_client(base, plan) for plan in plans[GRPC_CLIENTS:]),
            )
    return [outcome for outcomes in done for outcome in outcomes]


def test_concurrent_keyed_calls_are_all_logged_and_counted(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    started = datetime.now(timezone.utc)
    issued = issue_keys(monitor.store, KEYS)
    secrets = [secret for _, secret in issued]
    plans = [plan_calls(c, secrets, generate_key()) for c in range(GRPC_CLIENTS + REST_CLIENTS)]

    outcomes = asyncio.run(fifty_clients(monitor, bookstore_pb, plans))
    assert monitor.settle(WAIT), "calls still running, or the writer did not flush"

    assert len(outcomes) == 2_000
    made = Counter((o.call.method, o.code) for o in outcomes)
    wrong = (GRPC_CLIENTS + REST_CLIENTS) * (CALLS_PER_CLIENT // WRONG_KEY_EVERY)
    assert sum(n for (_, code), n in made.items() if code == "UNAUTHENTICATED") == wrong
    assert sum(n for (_, code), n in made.items() if code == "OK") == 2_000 - wrong

    store = monitor.store
    assert stored_count(store) == 2_000
    records = stored_records(store)
    # Each call logged exactly once, by the transport it came over.
    assert sorted(r.request_id for r in records) == sorted(o.call.request_id for o in outcomes)
    assert Counter(r.transport for r in records) == {
        "grpc": GRPC_CLIENTS * CALLS_PER_CLIENT,
        "http": REST_CLIENTS * CALLS_PER_CLIENT,
    }
    assert stored_count(store, status=CallStatus.PENDING) == 0
    for method in (GET_SHELF, LIST_SHELVES):
        assert stored_count(store, method=method, status=CallStatus.SUCCESS) == made[method, "OK"]
        assert (
            stored_count(store, method=method, status=CallStatus.ERROR)
            == made[method, "UNAUTHENTICATED"]
        )

    used = Counter(o.call.secret for o in outcomes if o.code == "OK")
    for key, secret in issued:
        stored = store.key(key.id)
        assert stored is not None
        assert stored.request_count == used[secret]
        assert stored.last_used_at is not None and stored.last_used_at >= started

    health = monitor.health()
    assert (health["status"], health["dropped"], health["lost"]) == ("healthy", 0, 0)
    assert health["store_ok"] and health["queue_depth"] == 0
