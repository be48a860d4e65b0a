"""The monitor stores (SQLite and PostgreSQL, via `store`): calls, rollup queries, purge, keys,
admin credentials. Expected numbers are computed here from the records, independently."""

from __future__ import annotations

import itertools
import math
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.monitor.model import (
    ApiKey,
    CallRecord,
    CallStatus,
    KeyType,
    KeyUse,
    NewApiKey,
    RequestQuery,
    Store,
    StoreError,
)
from protoc_gen_restmon.runtime.monitor.stores import SqlStore, open_store, sqlite_path
from protoc_gen_restmon.runtime.monitor.stores.postgres import mask_password
from protoc_gen_restmon.runtime.monitor.stores.schema import LATEST, schema_version
from tests.support.monitor_fixtures import (
    DatabasePool,
    create_database,
    drop_database,
    make_call,
    minute_start,
)
from tests.support.postgres_server import PostgresServer

NOW = minute_start(datetime.now(timezone.utc)) + timedelta(seconds=30)
HOUR_AGO = NOW - timedelta(hours=1)
FINAL = [CallStatus.SUCCESS, CallStatus.ERROR, CallStatus.TIMEOUT, CallStatus.CANCELLED]


def stored(store: Store, call_id: str) -> CallRecord:
    (record,) = [
        r for r in store.requests(RequestQuery(limit=1000)).results if r.call_id == call_id
    ]
    return record


# Opening.


def test_open_store_rejects_unknown_scheme() -> None:
    with pytest.raises(StoreError, match="unknown store"):
        open_store("mysql://localhost/db")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        pytest.param("sqlite:///restmon.db", Path("restmon.db"), id="relative"),
        pytest.param("sqlite:////var/lib/r.db", Path("/var/lib/r.db"), id="absolute"),
    ],
)
def test_sqlite_path_of_url(url: str, path: Path) -> None:
    assert sqlite_path(url) == path


def test_sqlite_path_rejects_missing_path() -> None:
    with pytest.raises(StoreError, match="expected sqlite:///"):
        sqlite_path("sqlite://")


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        pytest.param("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db", id="url"),
        pytest.param("postgresql://u@h/db?password=s3&x=1", "postgresql://u@h/db?password=***&x=1"),
        pytest.param("host=h password='a b' user=u", "host=h password=*** user=u", id="keyvalue"),
        pytest.param("postgresql://u@h/db", "postgresql://u@h/db", id="none"),
    ],
)
def test_mask_password(dsn: str, masked: str) -> None:
    assert mask_password(dsn) == masked


def test_store_url_masks_password(postgres_databases: DatabasePool) -> None:
    # The test server trusts every connection, so any password is accepted (and must be hidden).
    name = postgres_databases.take()
    dsn = postgres_databases.server.dsn_for(name).replace("postgres@", "postgres:hunter2@")
    store = open_store(dsn)
    try:
        assert "hunter2" not in store.url and ":***@" in store.url
    finally:
        store.close()
        postgres_databases.give_back(name)


def test_migrate_is_idempotent(store: Store, store_url: str) -> None:
    store.write_batch([make_call("a")], [])
    again = open_store(store_url)
    try:
        again.migrate()
        assert again.requests(RequestQuery()).count == 1
        assert isinstance(again, SqlStore)
        assert again._connections.run(schema_version, write=False) == LATEST
    finally:
        again.close()


# Upserts.


@pytest.mark.parametrize(
    "batches",
    [
        pytest.param([["pending"], ["final"]], id="pending-then-final"),
        pytest.param([["final"], ["pending"]], id="final-then-late-pending"),
        pytest.param([["pending", "final"]], id="same-batch"),
        pytest.param([["final", "pending"]], id="same-batch-reversed"),
    ],
)
def test_final_record_wins(store: Store, batches: list[list[str]]) -> None:
    records = {
        "pending": make_call("c", CallStatus.PENDING, created_at=NOW),
        "final": make_call("c", CallStatus.ERROR, created_at=NOW, duration_ms=7.0),
    }
    for batch in batches:
        store.write_batch([records[name] for name in batch], [])
    assert stored(store, "c") == records["final"]
    assert store.overview(HOUR_AGO)["failed_requests"] == 1


def test_second_final_is_ignored(store: Store) -> None:
    first = make_call("c", CallStatus.SUCCESS, created_at=NOW, duration_ms=2.0)
    store.write_batch([first], [])
    store.write_batch([make_call("c", CallStatus.ERROR, created_at=NOW, duration_ms=9.0)], [])
    assert stored(store, "c") == first
    assert store.overview(HOUR_AGO)["total_requests"] == 1


def test_finishing_keeps_start_time(store: Store) -> None:
    store.write_batch([make_call("c", CallStatus.PENDING, created_at=NOW)], [])
    later = NOW + timedelta(minutes=5)
    store.write_batch([make_call("c", CallStatus.SUCCESS, created_at=later)], [])
    assert stored(store, "c").created_at == NOW


def test_record_round_trips_every_field(store: Store) -> None:
    record = make_call(
        "full",
        CallStatus.CANCELLED,
        created_at=NOW.replace(microsecond=123456),
        duration_ms=12.345,
        error_message="client went away",
        client_ip="10.0.0.7",
        user_id=42,
        username="ada",
        is_authenticated=True,
        api_key_id=3,
        api_key_name="ci",
        transport="http",
        http_method="GET",
        http_path="/v1/shelves/1",
        peer="ipv4:10.0.0.7:5555",
        user_agent="curl/8",
        labels=(("tenant", "acme"), ("plan", "gold")),
    )
    store.write_batch([record], [])
    assert stored(store, "full") == record


# The rollup queries, against numbers computed from the records.

STATUSES = st.sampled_from([*FINAL, CallStatus.PENDING])
DURATIONS = st.floats(min_value=0.0, max_value=5_000.0, allow_nan=False)
RUNS = itertools.count()
CALLS = st.lists(
    st.tuples(st.integers(0, 5), STATUSES, DURATIONS),
    min_size=1,
    max_size=40,
)


def _expected(writes: list[CallRecord]) -> dict[str, CallRecord]:
    """Each call's state after the writes, by the rule: the first final wins over pending."""
    state: dict[str, CallRecord] = {}
    for record in writes:
        seen = state.get(record.call_id)
        if seen is None or seen.status is CallStatus.PENDING:
            state[record.call_id] = record
    return state


def _numbers(calls: list[CallRecord]) -> dict[str, float]:
    finished = [c for c in calls if c.status is not CallStatus.PENDING]
    successful = sum(c.status is CallStatus.SUCCESS for c in calls)
    durations = [c.duration_ms for c in finished if c.duration_ms is not None]
    return {
        "total_requests": len(calls),
        "successful_requests": successful,
        "failed_requests": len(finished) - successful,
        "success_rate": round(100 * successful / len(finished), 1) if finished else 0.0,
        "avg_duration_ms": round(sum(durations) / len(durations), 1) if durations else 0.0,
    }


def _nearest_rank(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(len(ordered) * q / 100), 1) - 1]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=CALLS, split=st.integers(1, 5))
def test_methods_match_the_records(
    store: Store, calls: list[tuple[int, CallStatus, float]], split: int
) -> None:
    """Calls 0..5 (each written several times, in batches of `split`) of methods A and B."""
    # Each example gets its own service name, so examples do not see each other's calls.
    run = next(RUNS)
    service = f"svc.run{run}"
    writes = [
        make_call(
            f"{run}-{n}", status, created_at=NOW, duration_ms=d, service=service, method="AB"[n % 2]
        )
        for n, status, d in calls
    ]
    for start in range(0, len(writes), split):
        store.write_batch(writes[start : start + split], [])
    final = _expected(writes)
    methods = {m["method_name"]: m for m in store.methods(HOUR_AGO, service=service)}
    assert set(methods) == {c.method_name for c in final.values()}
    for name, found in methods.items():
        row = dict(found)
        mine = [c for c in final.values() if c.method_name == name]
        expected = _numbers(mine)
        # The database adds durations in another order: the average may differ in the last
        # bit, and so round the other way at a .x5 boundary.
        assert abs(row.pop("avg_duration_ms") - expected.pop("avg_duration_ms")) <= 0.1 + 1e-9
        assert {k: row[k] for k in expected} == expected
        durations = [c.duration_ms for c in mine if c.duration_ms is not None]
        if durations:
            assert (row["min_duration_ms"], row["max_duration_ms"]) == (
                round(min(durations), 1),
                round(max(durations), 1),
            )
            for q in (50, 95, 99):
                exact = _nearest_rank(durations, q)
                assert abs(row[f"p{q}_ms"] - exact) <= 0.12 * exact + 0.11


def _seed(store: Store) -> list[CallRecord]:
    records = [
        make_call("s1", CallStatus.SUCCESS, created_at=NOW, duration_ms=10.0, method="GetShelf"),
        make_call("s2", CallStatus.ERROR, created_at=NOW, duration_ms=30.0, method="GetShelf"),
        make_call("s3", CallStatus.PENDING, created_at=NOW, method="ListShelves"),
        make_call("s4", CallStatus.SUCCESS, created_at=NOW, duration_ms=5.0, service="other.S"),
        make_call("old", CallStatus.SUCCESS, created_at=NOW - timedelta(hours=3)),
    ]
    store.write_batch(records, [])
    return records


def test_overview_counts_window(store: Store) -> None:
    records = _seed(store)
    recent = [r for r in records if r.call_id != "old"]
    expected = {**_numbers(recent), "total_services": 2, "active_api_keys": 0}
    assert store.overview(HOUR_AGO) == expected


def test_services_shape_and_numbers(store: Store) -> None:
    records = [r for r in _seed(store) if r.call_id != "old"]
    by_service = {
        name: [r for r in records if r.service_name == name]
        for name in sorted({r.service_name for r in records})
    }
    assert store.services(HOUR_AGO) == [
        {
            "service_name": name,
            **_numbers(calls),
            "methods_count": len({c.method_name for c in calls}),
        }
        for name, calls in by_service.items()
    ]


def test_methods_shape(store: Store) -> None:
    _seed(store)
    methods = store.methods(HOUR_AGO, service="bookstore.v1.Bookstore")
    (row,) = [m for m in methods if m["method_name"] == "GetShelf"]
    assert list(row) == [
        "service_name",
        "method_name",
        "total_requests",
        "successful_requests",
        "failed_requests",
        "success_rate",
        "avg_duration_ms",
        "min_duration_ms",
        "max_duration_ms",
        "p50_ms",
        "p95_ms",
        "p99_ms",
    ]
    assert (row["success_rate"], row["avg_duration_ms"]) == (50.0, 20.0)


def test_methods_filter_by_service(store: Store) -> None:
    _seed(store)
    assert [m["service_name"] for m in store.methods(HOUR_AGO, service="other.S")] == ["other.S"]


@pytest.mark.parametrize("minutes", [0, 5, 59, 60, 61, 90, 125, 179])
def test_window_starts_at_the_minute_of_since(store: Store, minutes: int) -> None:
    # Calls every 7 minutes over 3 hours, across hour boundaries (minute and hour rollups).
    times = [NOW - timedelta(minutes=m) for m in range(0, 180, 7)]
    store.write_batch([make_call(f"c{i}", created_at=t) for i, t in enumerate(times)], [])
    since = NOW - timedelta(minutes=minutes, seconds=10)
    expected = sum(t >= minute_start(since) for t in times)
    assert store.overview(since)["total_requests"] == expected
    assert sum(m["total_requests"] for m in store.methods(since)) == expected


@pytest.mark.parametrize(
    ("statuses", "rate"),
    [
        pytest.param([], 0.0, id="no-calls"),
        pytest.param([CallStatus.PENDING], 0.0, id="only-pending"),
        pytest.param([CallStatus.SUCCESS, CallStatus.PENDING], 100.0, id="pending-not-counted"),
        pytest.param([CallStatus.SUCCESS] * 2 + [CallStatus.ERROR], 66.7, id="rounded"),
        pytest.param([CallStatus.TIMEOUT, CallStatus.CANCELLED], 0.0, id="all-failed"),
    ],
)
def test_success_rate(store: Store, statuses: list[CallStatus], rate: float) -> None:
    store.write_batch([make_call(f"c{i}", s, created_at=NOW) for i, s in enumerate(statuses)], [])
    overview = store.overview(HOUR_AGO)
    assert (overview["success_rate"], overview["total_requests"]) == (rate, len(statuses))
    assert [s["success_rate"] for s in store.services(HOUR_AGO)] == ([rate] if statuses else [])


# The request log.


def test_requests_newest_first_with_total(store: Store) -> None:
    store.write_batch(
        [make_call(f"c{i}", created_at=NOW - timedelta(seconds=i)) for i in range(7)], []
    )
    page = store.requests(RequestQuery(limit=3, offset=2))
    assert page.count == 7
    assert [r.call_id for r in page.results] == ["c2", "c3", "c4"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(RequestQuery(service="other.S"), {"s4"}, id="service"),
        pytest.param(RequestQuery(method="ListShelves"), {"s3"}, id="method"),
        pytest.param(RequestQuery(status=CallStatus.ERROR), {"s2"}, id="status"),
        pytest.param(
            RequestQuery(
                service="bookstore.v1.Bookstore", method="GetShelf", status=CallStatus.SUCCESS
            ),
            {"s1", "old"},
            id="all-three",
        ),
    ],
)
def test_requests_filters(store: Store, query: RequestQuery, expected: set[str]) -> None:
    _seed(store)
    page = store.requests(query)
    assert ({r.call_id for r in page.results}, page.count) == (expected, len(expected))


# Purging.


def test_purge_before_removes_old_calls_and_rollups(store: Store) -> None:
    _seed(store)
    assert store.purge_before(NOW - timedelta(hours=2)) == 1
    assert store.requests(RequestQuery()).count == 4
    assert store.overview(NOW - timedelta(days=1))["total_requests"] == 4


def test_purge_in_chunks_counts_all(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("protoc_gen_restmon.runtime.monitor.stores.sql.PURGE_CHUNK", 3)
    old = NOW - timedelta(days=2)
    store.write_batch([make_call(f"c{i}", created_at=old) for i in range(10)], [])
    store.write_batch([make_call("new", created_at=NOW)], [])
    assert store.purge_before(NOW - timedelta(days=1)) == 10
    assert [r.call_id for r in store.requests(RequestQuery()).results] == ["new"]


# API keys.


def new_key(name: str = "k", key_type: KeyType = KeyType.SERVICE, **fields: object) -> NewApiKey:
    return NewApiKey(
        name=name,
        key_type=key_type,
        key_hash=f"hash-{name}",
        key_prefix="rm_a",
        key_suffix="wxyz",
        **fields,  # type: ignore[arg-type]
    )


def test_create_and_get_key(store: Store) -> None:
    created = store.create_key(new_key("ci", KeyType.CLI, user_id=7, username="ada"))
    assert created.is_active and created.request_count == 0 and created.last_used_at is None
    assert (created.masked_key, created.user_id, created.username) == ("rm_a...wxyz", 7, "ada")
    assert store.key(created.id) == created == store.key_by_hash("hash-ci")
    assert store.key(created.id + 100) is None and store.key_by_hash("nope") is None


def test_duplicate_key_hash_is_store_error(store: Store) -> None:
    store.create_key(new_key("a"))
    with pytest.raises(StoreError):
        store.create_key(new_key("a"))


def names(keys: list[ApiKey]) -> list[str]:
    return [key.name for key in keys]


def test_keys_filters(store: Store) -> None:
    a = store.create_key(new_key("a", KeyType.SERVICE, user_id=1))
    b = store.create_key(new_key("b", KeyType.CLI, user_id=1))
    c = store.create_key(new_key("c", KeyType.CLI, user_id=2))
    store.revoke_key(b.id)
    assert names(store.keys()) == ["a", "b", "c"]
    assert names(store.keys(is_active=True)) == ["a", "c"]
    assert names(store.keys(key_type=KeyType.CLI)) == ["b", "c"]
    assert names(store.keys(user_id=1, is_active=False)) == ["b"]
    assert (a.id, c.id) == (store.keys(is_active=True)[0].id, store.keys(user_id=2)[0].id)


def test_revoke_and_expire_report_unknown_ids(store: Store) -> None:
    key = store.create_key(new_key())
    assert store.revoke_key(key.id) and not store.revoke_key(key.id + 1)
    assert store.expire_key(key.id, NOW) and not store.expire_key(key.id + 1, NOW)
    found = store.key(key.id)
    assert found is not None and (found.is_active, found.expires_at) == (False, NOW)


def test_key_stats(store: Store) -> None:
    store.create_key(new_key("live", KeyType.SERVICE))
    store.create_key(new_key("future", KeyType.CLI, expires_at=NOW + timedelta(days=1)))
    expired = store.create_key(new_key("past", KeyType.CLI, expires_at=NOW - timedelta(days=1)))
    revoked = store.create_key(new_key("off", KeyType.WEBHOOK))
    store.revoke_key(revoked.id)
    store.write_batch([], [KeyUse(expired.id, NOW, count=5), KeyUse(revoked.id, NOW)])
    assert store.key_stats(NOW) == {
        "total_keys": 4,
        "active_keys": 2,
        "expired_keys": 1,
        "total_requests": 6,
        "keys_by_type": {"service": 1, "cli": 2, "webhook": 1, "internal": 0, "development": 0},
    }
    assert store.overview(HOUR_AGO)["active_api_keys"] == 2
    # Judged at a given time: two days on, "future" has expired too.
    assert store.overview(HOUR_AGO, NOW + timedelta(days=2))["active_api_keys"] == 1


def test_key_use_keeps_latest_time(store: Store) -> None:
    key = store.create_key(new_key())
    store.write_batch([], [KeyUse(key.id, NOW), KeyUse(key.id, NOW - timedelta(hours=1))])
    store.write_batch([], [KeyUse(key.id, NOW - timedelta(minutes=1))])
    found = store.key(key.id)
    assert found is not None and (found.request_count, found.last_used_at) == (3, NOW)


def test_key_uses_are_exact_under_concurrency(store: Store) -> None:
    key = store.create_key(new_key())
    threads, uses = 8, 500
    times = [NOW + timedelta(seconds=t) for t in range(threads)]

    def hammer(t: int) -> None:
        for _ in range(uses // 10):
            store.write_batch([], [KeyUse(key.id, times[t])] * 10)

    workers = [threading.Thread(target=hammer, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    found = store.key(key.id)
    assert found is not None and found.request_count == threads * uses
    assert found.last_used_at == max(times)


# Admin credentials.


def test_admin_password_set_and_replace(store: Store) -> None:
    assert store.admin_password_hash("admin") is None
    store.set_admin_password("admin", "h1")
    store.set_admin_password("admin", "h2")
    assert store.admin_password_hash("admin") == "h2"


def test_admin_tokens(store: Store) -> None:
    first = store.create_admin_token("laptop", "t1")
    second = store.create_admin_token("ci", "t2")
    assert store.admin_token_by_hash("t2") == second and store.admin_token_by_hash("x") is None
    assert store.revoke_admin_token(first.id) and not store.revoke_admin_token(second.id + 9)
    assert [(t.name, t.is_active) for t in store.admin_tokens()] == [
        ("laptop", False),
        ("ci", True),
    ]


# PostgreSQL going away.


def test_postgres_store_reconnects_after_restart(postgres: PostgresServer) -> None:
    name = create_database(postgres)
    store = open_store(postgres.dsn_for(name))
    try:
        store.write_batch([make_call("before-restart", created_at=NOW)], [])
        postgres.stop()
        try:
            with pytest.raises(StoreError):
                store.ping()
        finally:
            postgres.start()
        store.write_batch([make_call("after-restart", created_at=NOW)], [])
        ids = {r.call_id for r in store.requests(RequestQuery(limit=1000)).results}
        assert {"before-restart", "after-restart"} <= ids
    finally:
        store.close()
        drop_database(postgres, name)
