"""The batch writer against real stores: batching, merging, drops, store outages, retention,
and the live calls a Monitor queues (pending or final, depending on when the writer takes them)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.gateway.observe import CallInfo
from protoc_gen_restmon.runtime.monitor.call import MethodState, MonitoredCall
from protoc_gen_restmon.runtime.monitor.model import (
    CallRecord,
    CallStatus,
    KeyType,
    KeyUse,
    NewApiKey,
    RequestQuery,
    Store,
    fold_key_uses,
    merge_calls,
)
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from protoc_gen_restmon.runtime.monitor.stores import SqlStore, sqlite_path
from protoc_gen_restmon.runtime.monitor.stores.sqlite import SqliteConnections
from protoc_gen_restmon.runtime.monitor.writer import BatchWriter
from protoc_gen_restmon.runtime.status import Code, RpcError
from tests.support.monitor_fixtures import make_call
from tests.support.postgres_server import PostgresServer

NOW = datetime.now(timezone.utc)
Outage = Callable[[], contextlib.AbstractContextManager[None]]


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@contextlib.contextmanager
def running(writer: BatchWriter) -> Iterator[BatchWriter]:
    try:
        yield writer
    finally:
        writer.close()


def call_ids(store: Store) -> set[str]:
    return {r.call_id for r in store.requests(RequestQuery(limit=1000)).results}


# Merging (pure).

WRITES = st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(list(CallStatus))), max_size=20)


@given(WRITES)
def test_merge_calls_keeps_first_final(writes: list[tuple[str, CallStatus]]) -> None:
    records = [make_call(cid, status, request_id=str(n)) for n, (cid, status) in enumerate(writes)]
    merged = {r.call_id: r for r in merge_calls(records)}
    assert set(merged) == {cid for cid, _ in writes}
    for cid, record in merged.items():
        mine = [r for r in records if r.call_id == cid]
        finals = [r for r in mine if r.status is not CallStatus.PENDING]
        assert record == (finals[0] if finals else mine[-1])


@given(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 100), st.integers(1, 5))))
def test_fold_key_uses_sums_counts(uses: list[tuple[int, int, int]]) -> None:
    given_uses = [KeyUse(k, NOW + timedelta(seconds=s), c) for k, s, c in uses]
    folded = {u.api_key_id: u for u in fold_key_uses(given_uses)}
    for key_id, use in folded.items():
        mine = [u for u in given_uses if u.api_key_id == key_id]
        assert use.count == sum(u.count for u in mine)
        assert use.used_at == max(u.used_at for u in mine)
    assert set(folded) == {k for k, _, _ in uses}


# Writing.


def test_pending_and_final_are_written_as_one(store: Store) -> None:
    with running(BatchWriter(store, flush_interval=0.01)) as writer:
        for i in range(200):
            writer.submit(make_call(f"c{i}", CallStatus.PENDING, created_at=NOW))
            writer.submit(make_call(f"c{i}", CallStatus.SUCCESS, created_at=NOW))
        assert writer.flush()
        page = store.requests(RequestQuery(limit=1000))
        assert page.count == 200
        assert {r.status for r in page.results} == {CallStatus.SUCCESS}
        assert writer.stats() == {
            "recorded": 400,
            "dropped": 0,
            "lost": 0,
            "store_errors": 0,
            "last_error": "",
            "queue_depth": 0,
            "store_ok": True,
        }


def test_full_queue_drops_and_counts(store: Store) -> None:
    # A batch larger than the queue and a long interval: the writer sleeps while we submit.
    writer = BatchWriter(store, queue_size=100, batch_size=1000, flush_interval=60)
    with running(writer):
        accepted = [writer.submit(make_call(f"c{i}")) for i in range(250)]
        assert (accepted.count(True), writer.dropped, writer.queue_depth) == (100, 150, 100)
        assert writer.flush()
        assert call_ids(store) == {f"c{i}" for i in range(100)}


def test_key_uses_from_many_threads_are_exact(store: Store) -> None:
    key = store.create_key(NewApiKey("k", KeyType.SERVICE, "h", "rm_a", "wxyz"))
    threads, uses = 8, 500
    times = [NOW + timedelta(seconds=t) for t in range(threads)]
    with running(BatchWriter(store, flush_interval=0.005, batch_size=64)) as writer:

        def hammer(t: int) -> None:
            for _ in range(uses):
                writer.use_key(KeyUse(key.id, times[t]))

        workers = [threading.Thread(target=hammer, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert writer.flush()
    found = store.key(key.id)
    assert found is not None and (found.request_count, found.last_used_at) == (4000, max(times))


def test_close_writes_what_is_queued(store: Store) -> None:
    writer = BatchWriter(store, flush_interval=60, batch_size=1000)
    writer.submit(make_call("last"))
    writer.close()
    assert call_ids(store) == {"last"}
    assert not writer._thread.is_alive()
    writer.close()  # a second close is harmless
    writer.submit(make_call("after"))
    assert (writer.flush(timeout=5), writer.queue_depth) == (False, 1)


# Store outages.


@pytest.fixture
def outage(request: pytest.FixtureRequest, store_url: str) -> Outage:
    """A context manager during which the store cannot be written: SQLite: another connection
    holds the exclusive lock; PostgreSQL: the server is stopped."""
    if store_url.startswith("sqlite"):
        return lambda: _sqlite_locked(store_url)
    server: PostgresServer = request.getfixturevalue("postgres")
    return lambda: _postgres_down(server)


@contextlib.contextmanager
def _sqlite_locked(url: str) -> Iterator[None]:
    holder = sqlite3.connect(sqlite_path(url), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


@contextlib.contextmanager
def _postgres_down(server: PostgresServer) -> Iterator[None]:
    server.stop()
    try:
        yield
    finally:
        server.start()


@pytest.fixture
def impatient_store(store: Store, store_url: str) -> Iterator[Store]:
    """`store`, but SQLite waits only 50 ms for a lock (PostgreSQL fails fast when down)."""
    if not store_url.startswith("sqlite"):
        yield store
        return
    quick = SqlStore(SqliteConnections(sqlite_path(store_url), busy_timeout_ms=50))
    try:
        yield quick
    finally:
        quick.close()


def test_outage_loses_counted_and_recovers(impatient_store: Store, outage: Outage) -> None:
    writer = BatchWriter(impatient_store, flush_interval=0.01, max_retries=2, retry_backoff=0.01)
    with running(writer):
        with outage():
            started = time.perf_counter()
            accepted = [writer.submit(make_call(f"down{i}")) for i in range(50)]
            submitting = time.perf_counter() - started
            wait_until(lambda: writer.lost == 50)
            assert all(accepted) and submitting < 0.5  # never waited for the store
            assert not writer.store_ok and writer.store_errors >= 3 and writer.last_error
        writer.submit(make_call("back"))
        assert writer.flush()
        assert writer.store_ok and writer.recorded == 1
    assert call_ids(impatient_store) == {"back"}


def test_short_outage_is_retried_without_loss(impatient_store: Store, outage: Outage) -> None:
    writer = BatchWriter(impatient_store, flush_interval=0.01, max_retries=50, retry_backoff=0.02)
    with running(writer):
        with outage():
            writer.submit(make_call("held"))
            wait_until(lambda: writer.store_errors >= 1)
        assert writer.flush()
        assert (writer.lost, writer.recorded, writer.store_ok) == (0, 1, True)
    assert call_ids(impatient_store) == {"held"}


# Retention.


def test_retention_purges_old_calls(store: Store) -> None:
    old = [make_call(f"old{i}", created_at=NOW - timedelta(days=3)) for i in range(5)]
    store.write_batch([*old, make_call("new", created_at=NOW)], [])
    writer = BatchWriter(store, flush_interval=0.01, retention=timedelta(days=1))
    with running(writer):
        wait_until(lambda: writer.purged == 5)
    assert call_ids(store) == {"new"}


# Live calls: queued once by the Monitor, turned into records by the writer thread.

INFO = CallInfo("bookstore.v1.Bookstore", "GetShelf", "grpc", "")


@contextlib.contextmanager
def monitor_on(store: Store, flush_interval: float, **options: Any) -> Iterator[Monitor]:
    monitor = Monitor(store, **options)
    monitor.writer.flush_interval = flush_interval
    assert monitor.writer.flush()  # the thread now sleeps `flush_interval` between batches
    try:
        yield monitor
    finally:
        monitor.close()


def stored_statuses(store: Store) -> dict[str, CallStatus]:
    return {r.call_id: r.status for r in store.requests(RequestQuery(limit=1000)).results}


def test_live_call_taken_while_running_is_pending_then_final(store: Store) -> None:
    with monitor_on(store, flush_interval=60) as monitor:  # the writer runs on flush only
        ended_early = monitor.begin(INFO)
        ended_early.finish(Code.OK)
        running_calls = [monitor.begin(INFO) for _ in range(3)]
        assert monitor.writer.flush()
        statuses = stored_statuses(store)
        assert sorted(statuses.values()) == [CallStatus.PENDING] * 3 + [CallStatus.SUCCESS]
        for call, code in zip(
            running_calls, (Code.OK, Code.DEADLINE_EXCEEDED, Code.CANCELLED), strict=True
        ):
            call.finish(code)
        assert monitor.writer.flush()
        assert sorted(stored_statuses(store).values()) == [
            CallStatus.CANCELLED,
            CallStatus.SUCCESS,
            CallStatus.SUCCESS,
            CallStatus.TIMEOUT,
        ]
        # One record for the call that ended before the writer saw it, two for the others.
        assert (monitor.writer.recorded, monitor.writer.queue_depth) == (7, 0)


def test_live_calls_ending_while_the_writer_takes_them_are_never_left_pending(
    store: Store,
) -> None:
    """The writer takes calls as fast as it can while they end: whichever side is first,
    every call ends up with its final status, written once."""
    with monitor_on(store, flush_interval=0.0001) as monitor:
        for _ in range(200):
            calls = [monitor.begin(INFO) for _ in range(3)]
            time.sleep(0.0002)  # lets the writer take some of them while they run
            for call in calls:
                call.finish(Code.NOT_FOUND)
        assert monitor.writer.flush()
        statuses = stored_statuses(store)
        assert len(statuses) == 600 and set(statuses.values()) == {CallStatus.ERROR}
        # More than one record per call: some were taken while running (pending, then final).
        assert 600 < monitor.writer.recorded <= 1200 and monitor.writer.lost == 0


class Describer:
    """A `describe` for `begin_deferred` that notes which thread called it, and how often."""

    def __init__(self, fail: bool = False) -> None:
        self.threads: list[str] = []
        self.fail = fail

    def __call__(self, state: MethodState, arrival: tuple[str, str]) -> CallInfo:
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise ValueError("cannot describe this call")
        peer, agent = arrival
        return CallInfo(state.service, state.method, "grpc", "req-7", peer, "10.1.2.3", agent)


def only_record(store: Store) -> CallRecord:
    (record,) = store.requests(RequestQuery(limit=10)).results
    return record


def test_deferred_call_is_described_once_by_the_writer_thread(store: Store) -> None:
    describe = Describer()
    with monitor_on(store, flush_interval=60) as monitor:
        state = monitor.method_state(INFO.service, INFO.method)
        before = datetime.now(timezone.utc)
        call = monitor.begin_deferred(state, ("10.1.2.3:5000", "agent/1"), describe)
        assert describe.threads == []  # nothing described on the calling thread
        assert monitor.writer.flush()  # written as pending
        call.finish(Code.NOT_FOUND, "no such shelf")
        after = datetime.now(timezone.utc)
        assert monitor.writer.flush()  # then final
    assert describe.threads == ["restmon-writer"]
    record = only_record(store)
    assert (record.status, record.error_message) == (CallStatus.ERROR, "no such shelf")
    assert (record.request_id, record.peer, record.client_ip, record.user_agent) == (
        "req-7",
        "10.1.2.3:5000",
        "10.1.2.3",
        "agent/1",
    )
    # Read by the writer thread from the wall clock minus the time since begin: the start.
    assert before - timedelta(milliseconds=5) <= record.created_at <= after


def test_call_that_cannot_be_described_is_recorded_with_its_method(store: Store) -> None:
    with monitor_on(store, flush_interval=60) as monitor:
        state = monitor.method_state(INFO.service, INFO.method)
        monitor.begin_deferred(state, ("", ""), Describer(fail=True)).finish(Code.OK)
        assert monitor.writer.flush()
        record = only_record(store)
        assert (record.service_name, record.method_name, record.status) == (
            INFO.service,
            INFO.method,
            CallStatus.SUCCESS,
        )
        assert (record.client_ip, record.peer) == ("", "")
        assert monitor.health()["internal_errors"] == 1
        # The writer thread goes on: the next call is recorded in full.
        monitor.begin_deferred(state, ("10.1.2.3:1", "a"), Describer()).finish(Code.OK)
        assert monitor.writer.flush()
        assert store.requests(RequestQuery(limit=10)).count == 2


def test_deferred_call_checked_for_a_key_is_described_before_it_runs(store: Store) -> None:
    describe = Describer()
    with monitor_on(store, flush_interval=60, require_keys=True) as monitor:  # none sent
        state = monitor.method_state(INFO.service, INFO.method)
        with pytest.raises(RpcError) as refused:
            monitor.begin_deferred(state, ("10.1.2.3:5000", "agent/1"), describe)
        assert refused.value.code == Code.UNAUTHENTICATED
        assert describe.threads == [threading.current_thread().name]
        assert monitor.writer.flush()
    record = only_record(store)
    assert (record.grpc_status_code, record.client_ip) == ("UNAUTHENTICATED", "10.1.2.3")


def test_quick_calls_ending_while_the_writer_takes_them_are_never_left_pending(
    store: Store,
) -> None:
    """grpclib's hot path inlines MonitoredCall.finish's side of the handshake: written out
    here as `grpclib_events._quick` does it."""
    with monitor_on(store, flush_interval=0.0001) as monitor:
        state = monitor.method_state(INFO.service, INFO.method)
        describe = Describer()
        for _ in range(200):
            arrival = ("10.1.2.3:1", "a")
            calls = [MonitoredCall(state, arrival, describe, time.perf_counter()) for _ in range(3)]
            for call in calls:
                monitor.writer.submit(call)
            time.sleep(0.0002)  # lets the writer take some of them while they run
            for call in calls:
                call.ended = (Code.NOT_FOUND, "gone", time.perf_counter())
                if call.taken:
                    monitor.writer.submit(call)
        assert monitor.writer.flush()
        statuses = stored_statuses(store)
        assert len(statuses) == 600 and set(statuses.values()) == {CallStatus.ERROR}
        assert 600 < monitor.writer.recorded <= 1200 and monitor.writer.lost == 0
        records = store.requests(RequestQuery(limit=1)).results
        assert records[0].error_message == "gone" and records[0].duration_ms is not None
