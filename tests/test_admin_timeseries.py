"""`GET /api/grpc/monitor/timeseries/` over real HTTP, on SQLite and PostgreSQL, with calls
recorded at known times and the admin API's clock fixed: bucket boundaries, empty buckets, step
selection, filters, 400s, and sums that equal `overview`, `services` and `methods` for the same
window. A Python oracle over the same calls checks every bucket, and hypothesis varies the calls."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.admin.app import AdminApp
from protoc_gen_restmon.runtime.admin.auth import create_admin_token
from protoc_gen_restmon.runtime.monitor.model import (
    CallRecord,
    CallStatus,
    KeyType,
    NewApiKey,
    SeriesQuery,
    Step,
    Store,
)
from protoc_gen_restmon.runtime.monitor.stores import SqlStore, open_store, sqlite_path
from protoc_gen_restmon.runtime.monitor.stores.connections import Connections, Cursor
from protoc_gen_restmon.runtime.monitor.stores.histogram import percentile, percentiles
from protoc_gen_restmon.runtime.monitor.stores.rows import MICROS_PER_MINUTE, to_micros
from protoc_gen_restmon.runtime.monitor.stores.schema import MIGRATIONS
from tests.support.monitor_fixtures import make_call
from tests.support.servers import uvicorn_server

NOW = datetime(2026, 3, 10, 12, 34, 56, 789_000, tzinfo=timezone.utc)
SHELVES, GENRES = "bookstore.v1.Shelves", "bookstore.v1.Genres"
PATH = "/api/grpc/monitor/timeseries/"
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
CODES = {
    CallStatus.SUCCESS: "OK",
    CallStatus.ERROR: "NOT_FOUND",
    CallStatus.TIMEOUT: "DEADLINE_EXCEEDED",
    CallStatus.CANCELLED: "CANCELLED",
}
_ids = itertools.count()


def call(
    when: datetime,
    status: CallStatus = CallStatus.SUCCESS,
    *,
    service: str = SHELVES,
    method: str = "GetShelf",
    duration_ms: float = 2.0,
    code: str | None = None,
) -> CallRecord:
    pending = status is CallStatus.PENDING
    return make_call(
        f"{next(_ids):032x}",
        status,
        created_at=when,
        duration_ms=duration_ms,
        service=service,
        method=method,
        grpc_status_code="" if pending else code or CODES[status],
    )


def floor_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


WINDOW_START_1H = floor_minute(NOW - HOUR)  # 11:34
CALLS = [
    # Exactly on and just before minute and hour boundaries.
    call(datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)),
    call(datetime(2026, 3, 10, 11, 59, 59, 999_999, tzinfo=timezone.utc), CallStatus.ERROR),
    call(WINDOW_START_1H, CallStatus.TIMEOUT, duration_ms=100.0),
    call(WINDOW_START_1H - timedelta(microseconds=1), CallStatus.CANCELLED),  # outside 1 h
    call(floor_minute(NOW), CallStatus.PENDING),
    call(NOW, duration_ms=40.0, method="ListShelves"),
    call(NOW - 3 * MINUTE, CallStatus.ERROR, code="WEIRD"),  # not a gRPC code: UNKNOWN
    call(NOW - 10 * MINUTE, service=GENRES, method="ListGenres", duration_ms=7.5),
    call(NOW - 10 * MINUTE, CallStatus.ERROR, service=GENRES, method="ListGenres"),
    # Hours and days back.
    *(call(NOW - timedelta(hours=h), duration_ms=float(h)) for h in (2, 5, 7, 23, 30)),
    call(NOW - timedelta(hours=30), CallStatus.TIMEOUT, method="ListShelves"),
    call(NOW - timedelta(days=6, hours=1), CallStatus.ERROR, service=GENRES, method="X"),
    call(NOW - timedelta(days=8)),  # outside 7 days
]


@dataclass
class FixedMonitor:
    """What AdminApp needs of a Monitor, over a real store (no writer: the test writes)."""

    store: Store

    def health(self) -> dict[str, Any]:
        return {"status": "healthy"}

    def metrics(self) -> bytes:
        return b""


@dataclass
class Api:
    base: str
    token: str
    store: Store

    def get(self, path: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.get(f"{self.base}{path}", params=params, headers=headers, timeout=10)

    def json(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module", name="api")
def fixture_api(admin_store_url: str) -> Iterator[Api]:
    store = open_store(admin_store_url)
    try:
        _, token = create_admin_token(store, "timeseries tests")
        store.write_batch(CALLS, [])
        with uvicorn_server(AdminApp(FixedMonitor(store), clock=lambda: NOW)) as base:
            yield Api(base, token, store)
    finally:
        store.close()


# --- The oracle ---


def expected_buckets(
    calls: Sequence[CallRecord], since: datetime, until: datetime, step: Step
) -> list[dict[str, Any]]:
    """Bucket starts and counts computed from the calls themselves (no rollups)."""
    first, last = floor_minute(since), floor_minute(until)
    if step is Step.MINUTE:
        starts = [first + i * MINUTE for i in range((last - first) // MINUTE + 1)]
    else:
        hour = first.replace(minute=0) + (HOUR if first.minute else timedelta())
        starts = ([first] if first.minute else []) + [
            hour + i * HOUR for i in range((last.replace(minute=0) - hour) // HOUR + 1)
        ]
    ends = [*starts[1:], starts[-1] + (MINUTE if step is Step.MINUTE else HOUR)]
    buckets = []
    for start, end in zip(starts, ends, strict=True):
        inside = [c for c in calls if start <= c.created_at < end]
        statuses = Counter(c.status.value for c in inside)
        codes = Counter(c.grpc_status_code for c in inside if c.status is not CallStatus.PENDING)
        codes = Counter({("UNKNOWN" if k == "WEIRD" else k): v for k, v in codes.items()})
        buckets.append(
            {
                "start": start.isoformat().replace("+00:00", "Z"),
                "total": len(inside),
                "successful": statuses["success"],
                "failed": sum(statuses[s] for s in ("error", "timeout", "cancelled")),
                "by_status": {
                    s: statuses[s] for s in ("success", "error", "timeout", "cancelled", "pending")
                },
                "by_code": dict(sorted(codes.items())),
            }
        )
    return buckets


def counts_only(buckets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("start", "total", "successful", "failed", "by_status", "by_code")
    return [
        {k: (dict(sorted(b[k].items())) if k == "by_code" else b[k]) for k in keys} for b in buckets
    ]


# --- Tests ---


@pytest.mark.parametrize(
    ("hours", "step"), [(1, None), (6, None), (7, None), (24, None), (168, None), (48, "minute")]
)
def test_every_bucket_equals_the_oracle(api: Api, hours: int, step: str | None) -> None:
    answer = api.json(PATH, hours=hours, **({"step": step} if step else {}))
    expected_step = Step(step) if step else (Step.MINUTE if hours <= 6 else Step.HOUR)
    assert (answer["step"], answer["step_seconds"]) == (
        expected_step.value,
        expected_step.seconds,
    )
    since = NOW - timedelta(hours=hours)
    expected = expected_buckets(CALLS, since, NOW, expected_step)
    assert counts_only(answer["buckets"]) == expected
    assert answer["since"] == expected[0]["start"]
    assert answer["until"] == "2026-03-10T12:34:56.789000Z"
    assert (answer["service"], answer["method"]) == (None, None)


def test_minute_buckets_and_their_boundaries(api: Api) -> None:
    buckets = {b["start"]: b for b in api.json(PATH, hours=1)["buckets"]}
    assert len(buckets) == 61  # 11:34 … 12:34, both included
    assert buckets["2026-03-10T12:00:00Z"]["by_status"]["success"] == 1
    assert buckets["2026-03-10T11:59:00Z"]["by_status"]["error"] == 1
    assert buckets["2026-03-10T11:34:00Z"]["by_status"]["timeout"] == 1  # the window's start
    assert buckets["2026-03-10T12:34:00Z"]["by_status"]["pending"] == 1
    assert buckets["2026-03-10T12:31:00Z"]["by_code"] == {"UNKNOWN": 1}


def test_empty_buckets_are_zeros_without_latency(api: Api) -> None:
    empty = api.json(PATH, hours=1)["buckets"][1]  # 11:35: nothing happened
    assert empty == {
        "start": "2026-03-10T11:35:00Z",
        "total": 0,
        "successful": 0,
        "failed": 0,
        "by_status": {"success": 0, "error": 0, "timeout": 0, "cancelled": 0, "pending": 0},
        "by_code": {},
        "avg_ms": None,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
    }


def test_hour_buckets_start_at_the_window_then_on_the_hour(api: Api) -> None:
    starts = [b["start"] for b in api.json(PATH, hours=24)["buckets"]]
    assert starts[:3] == ["2026-03-09T12:34:00Z", "2026-03-09T13:00:00Z", "2026-03-09T14:00:00Z"]
    assert starts[-1] == "2026-03-10T12:00:00Z" and len(starts) == 25


def test_latency_of_a_bucket(api: Api) -> None:
    buckets = {b["start"]: b for b in api.json(PATH, hours=24)["buckets"]}
    five = buckets["2026-03-10T07:00:00Z"]  # one call of 5 ms
    assert (five["avg_ms"], five["p50_ms"], five["p95_ms"], five["p99_ms"]) == (5.0,) * 4
    [genres] = api.json("/api/grpc/monitor/methods/", hours=1, service=GENRES)[
        "methods"
    ]  # both ListGenres calls are in the 12:24 bucket
    [bucket] = [b for b in api.json(PATH, hours=1, service=GENRES)["buckets"] if b["total"]]
    assert bucket["start"] == "2026-03-10T12:24:00Z"
    assert [bucket[f"p{q}_ms"] for q in (50, 95, 99)] == [genres[f"p{q}_ms"] for q in (50, 95, 99)]
    assert bucket["avg_ms"] == genres["avg_duration_ms"]


@pytest.mark.parametrize(
    "query",
    [
        {"service": SHELVES},
        {"service": GENRES},
        {"method": "ListShelves"},
        {"service": SHELVES, "method": "GetShelf"},
        {"service": "no.such.Service"},
    ],
)
def test_filters(api: Api, query: dict[str, str]) -> None:
    answer = api.json(PATH, hours=168, **query)
    assert (answer["service"], answer["method"]) == (query.get("service"), query.get("method"))
    chosen = [
        c
        for c in CALLS
        if query.get("service", c.service_name) == c.service_name
        and query.get("method", c.method_name) == c.method_name
    ]
    since = NOW - timedelta(hours=168)
    assert counts_only(answer["buckets"]) == expected_buckets(chosen, since, NOW, Step.HOUR)


@pytest.mark.parametrize("hours", [1, 6, 24, 168])
def test_sums_equal_overview_services_and_methods(api: Api, hours: int) -> None:
    def sums(query: dict[str, str]) -> tuple[int, int, int]:
        buckets = api.json(PATH, hours=hours, **query)["buckets"]
        return tuple(sum(b[k] for b in buckets) for k in ("total", "successful", "failed"))  # type: ignore[return-value]

    def counts(row: dict[str, Any]) -> tuple[int, int, int]:
        return row["total_requests"], row["successful_requests"], row["failed_requests"]

    assert sums({}) == counts(api.json("/api/grpc/monitor/overview/", hours=hours))
    for service in api.json("/api/grpc/monitor/services/", hours=hours)["services"]:
        assert sums({"service": service["service_name"]}) == counts(service)
    for method in api.json("/api/grpc/monitor/methods/", hours=hours)["methods"]:
        query = {"service": method["service_name"], "method": method["method_name"]}
        assert sums(query) == counts(method)


def test_overview_judges_key_expiry_by_the_admin_clock(api: Api) -> None:
    """The clock is NOW (March 2026), long before the real time: a key valid until an hour
    after NOW has expired by the real clock, and is active by the admin API's."""

    def active() -> int:
        return int(api.json("/api/grpc/monitor/overview/", hours=1)["active_api_keys"])

    before = active()
    for name, expires in (("clock-valid", NOW + timedelta(hours=1)), ("clock-old", NOW)):
        api.store.create_key(
            NewApiKey(
                name=name,
                key_type=KeyType.CLI,
                key_hash=f"hash-{name}",
                key_prefix="rm_a",
                key_suffix="wxyz",
                expires_at=expires,
            )
        )
    assert active() == before + 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"hours": "abc"}, "hours: expected an integer"),
        ({"hours": "0"}, "hours: 0 is out of range [1, 8760]"),
        ({"hours": "8761"}, "hours: 8761 is out of range"),
        ({"step": "day"}, "step: 'day' is not one of minute, hour"),
        ({"step": "MINUTE"}, "step: 'MINUTE' is not one of"),
        ({"step": "minute", "hours": "49"}, "step: minute buckets serve windows up to 48 hours"),
    ],
)
def test_bad_parameters_are_400s(api: Api, params: dict[str, str], message: str) -> None:
    response = api.get(PATH, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 3 and message in body["message"]


def test_step_limits(api: Api) -> None:
    assert len(api.json(PATH, hours=48, step="minute")["buckets"]) == 48 * 60 + 1
    assert api.json(PATH, hours=6)["step"] == "minute"
    assert api.json(PATH, hours=7)["step"] == "hour"
    assert api.json(PATH, hours=1, step="hour")["step"] == "hour"
    assert api.json(PATH, hours=3, step="")["step"] == "minute"  # empty: no choice made
    assert len(api.json(PATH, hours=8760)["buckets"]) == 8761


def test_needs_admin_credentials(api: Api) -> None:
    response = httpx.get(f"{api.base}{PATH}", timeout=10)
    assert response.status_code == 401
    assert (
        httpx.post(
            f"{api.base}{PATH}", headers={"Authorization": f"Bearer {api.token}"}
        ).status_code
        == 405
    )


MINUTES_BACK = st.integers(0, 3 * 60)
CALL_SPECS = st.lists(
    st.tuples(MINUTES_BACK, st.integers(0, 59_999_999), st.sampled_from(list(CallStatus))),
    max_size=25,
)
_examples = itertools.count()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs=CALL_SPECS, hours=st.integers(1, 3), step=st.sampled_from(list(Step)))
def test_store_agrees_with_the_oracle(
    api: Api, specs: list[tuple[int, int, CallStatus]], hours: int, step: Step
) -> None:
    """Random calls (each example its own service name) bucketed by the store and by the oracle."""
    service = f"example.S{next(_examples)}"
    calls = [
        call(floor_minute(NOW) - m * MINUTE + timedelta(microseconds=us), status, service=service)
        for m, us, status in specs
    ]
    api.store.write_batch(calls, [])
    query = SeriesQuery(NOW - timedelta(hours=hours), NOW, step, service=service)
    found = [
        {**b, "start": b["start"].isoformat().replace("+00:00", "Z")}
        for b in api.store.timeseries(query)
    ]
    assert counts_only(found) == expected_buckets(calls, query.since, NOW, step)
    for bucket in found:
        timed = bucket["total"] - bucket["by_status"]["pending"]
        assert bucket["p99_ms"] == (2.0 if timed else None)  # every call took 2 ms


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(0, 1_000), min_size=64, max_size=64),
    low=st.floats(0, 1),
    high=st.floats(1, 1e6),
)
def test_percentiles_in_one_pass_equal_percentile(
    counts: list[int], low: float, high: float
) -> None:
    """The series' three-at-once percentiles are the methods endpoint's, one by one."""
    expected = [percentile(counts, q, low, high) for q in (50, 95, 99)]
    assert percentiles(counts, (50, 95, 99), low, high) == expected


def test_rollups_from_before_schema_2_are_migrated(store_url: str) -> None:
    """A store at schema version 1 gets the per-status and per-code columns (zero), keeps its
    counts, and its old failures show as errors; new calls are counted in full."""
    minute = to_micros(floor_minute(NOW)) // MICROS_PER_MINUTE
    rows = [("old.S", "M", 3, 1, 6.0, 2.0, 2.0)]
    old = _store_at_version(store_url, 1, minute, rows)
    old.write_batch([call(NOW, CallStatus.TIMEOUT, service="old.S", method="M")], [])
    query = SeriesQuery(NOW - HOUR, NOW, Step.MINUTE, service="old.S")
    last = old.timeseries(query)[-1]
    old.close()
    assert (last["total"], last["successful"], last["failed"]) == (4, 1, 3)
    assert last["by_status"] == {
        "success": 1,
        "error": 2,
        "timeout": 1,
        "cancelled": 0,
        "pending": 0,
    }
    assert last["by_code"] == {"DEADLINE_EXCEEDED": 1}


def test_rollups_from_before_schema_3_get_service_and_server_rows(store_url: str) -> None:
    """Migration 3 sums a version-2 store's per-method rows into per-service and whole-server
    rows: the unfiltered and per-service series count them once, `overview`, `services` and
    `methods` still read the per-method rows only, and new calls add to every level."""
    minute = to_micros(floor_minute(NOW)) // MICROS_PER_MINUTE
    rows = [
        ("a.S", "M1", 3, 2, 6.0, 1.0, 3.0),
        ("a.S", "M2", 5, 5, 10.0, 0.5, 4.0),
        ("b.S", "M1", 7, 1, 14.0, 2.0, 9.0),
    ]
    store = _store_at_version(store_url, 2, minute, rows)
    store.write_batch([call(NOW, service="b.S", method="M1")], [])
    since = NOW - HOUR
    try:
        for step in Step:
            everything = store.timeseries(SeriesQuery(since, NOW, step))[-1]
            by_service = [
                store.timeseries(SeriesQuery(since, NOW, step, service))[-1]
                for service in ("a.S", "b.S")
            ]
            assert (everything["total"], everything["successful"]) == (16, 9)
            assert [(b["total"], b["successful"]) for b in by_service] == [(8, 7), (8, 2)]
            # The durations, all in h20 (middle 7.8 ms), clamped to the maximum over the
            # methods' rows: 9.0 for the server, 4.0 for a.S.
            assert (everything["p99_ms"], by_service[0]["p99_ms"]) == (7.8, 4.0)
        assert store.overview(since)["total_requests"] == 16
        assert store.overview(since)["total_services"] == 2
        assert [s["methods_count"] for s in store.services(since)] == [2, 1]
        assert [m["total_requests"] for m in store.methods(since, None)] == [3, 5, 8]
    finally:
        store.close()


def _store_at_version(
    url: str, version: int, minute: int, rows: Sequence[tuple[Any, ...]]
) -> SqlStore:
    """A store built by the first `version` migrations, holding `rows` (service, method,
    total, successful, duration sum, min and max, every duration in h20) in `minute`'s minute
    and hour rollups, then migrated to the latest schema."""
    store = SqlStore(_connections(url))
    dialect = store._connections.dialect

    def build(cur: Cursor) -> None:
        cur.execute("DROP TABLE IF EXISTS schema_version")
        for table in ("calls", "call_rollups_minute", "call_rollups_hour", "api_keys"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute("DROP TABLE IF EXISTS admin_users")
        cur.execute("DROP TABLE IF EXISTS admin_tokens")
        for migration in MIGRATIONS[:version]:
            for template in migration:
                cur.execute(dialect.ddl(template))
        cur.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        for table, period in (("call_rollups_minute", minute), ("call_rollups_hour", minute // 60)):
            key = "minute" if table.endswith("minute") else "hour"
            for service, method, total, successful, duration, low, high in rows:
                cur.execute(
                    f"INSERT INTO {table} ({key}, service_name, method_name, total, finished,"
                    " successful, timed, duration_sum, duration_min, duration_max, h20)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        period,
                        service,
                        method,
                        total,
                        total,
                        successful,
                        total,
                        duration,
                        low,
                        high,
                        total,
                    ),
                )

    store._connections.run(build, write=True)
    store.migrate()
    return store


def _connections(url: str) -> Connections:
    """The connections `open_store(url)` would use, without migrating."""
    if url.startswith("sqlite:"):
        from protoc_gen_restmon.runtime.monitor.stores.sqlite import SqliteConnections

        return SqliteConnections(sqlite_path(url))
    from protoc_gen_restmon.runtime.monitor.stores.postgres import PostgresConnections

    return PostgresConnections(url)
