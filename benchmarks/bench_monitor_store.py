"""Recording throughput of the batch writer, and the monitor's queries over a million calls.

(a) Recording into SQLite through `BatchWriter` (default settings): N calls, each submitted as
    a pending record and, one chunk later, its final record. Paced at the 5,000 calls/s target
    (must lose nothing), and unpaced with a queue large enough to hold everything (the writer's
    capacity: calls/s from the first submit to `flush()`). Then the same through a `Monitor`,
    as the grpclib observer records a call: `begin_deferred` (the writer thread describes the
    call and builds its records), `finish` one chunk later; every call must be stored, final.
    Baselines: `store.write_batch` called directly with the same records in batches of 500
    (what the writer's thread can at best reach), and a bare `deque.append` for the per-call
    cost of `submit`.
(b) 1,000,000 finished calls (20 methods of 5 services, spread over 24 hours, 97% success,
    log-normal durations) written with `write_batch` in batches of 20,000; then overview,
    services and methods for the last 24 hours, median of 7 runs, on SQLite and, when a
    PostgreSQL is at hand (env RESTMON_TEST_POSTGRES_DSN, or the binaries the tests use), on
    PostgreSQL. Baseline: the same overview aggregated directly from the `calls` table
    (what a store without rollups must do). Target: ≤ 200 ms per query.

Writes the "monitor_store" section of benchmarks/RESULTS.md.

Usage: python benchmarks/bench_monitor_store.py [--calls N] [--logged N] [--no-postgres]
    [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from multidict import MultiDict  # noqa: E402

from benchmarks.results import machine_line, write_section  # noqa: E402
from protoc_gen_restmon.runtime.monitor.grpclib_events import describe  # noqa: E402
from protoc_gen_restmon.runtime.monitor.model import (  # noqa: E402
    CallRecord,
    CallStatus,
    RequestQuery,
    Store,
)
from protoc_gen_restmon.runtime.monitor.monitor import Monitor  # noqa: E402
from protoc_gen_restmon.runtime.monitor.stores import SqlStore, open_store  # noqa: E402
from protoc_gen_restmon.runtime.monitor.writer import BatchWriter  # noqa: E402
from protoc_gen_restmon.runtime.status import Code  # noqa: E402
from tests.support.monitor_fixtures import create_database, drop_database, make_call  # noqa: E402
from tests.support.postgres_server import PostgresServer, find_bindir, throwaway_server  # noqa: E402

TARGET_RATE = 5_000  # calls/s
TARGET_QUERY_MS = 200.0
CHUNK = 50  # calls submitted per pacing step
SERVICES = [f"bench.v1.Service{s}" for s in range(5)]
METHODS = [f"Method{m}" for m in range(4)]
BULK_BATCH = 20_000
QUERY_RUNS = 7
SEED = 20261123


# (a) Recording.


def call_pairs(count: int) -> list[tuple[CallRecord, CallRecord]]:
    now = datetime.now(timezone.utc)
    pairs = []
    for n in range(count):
        call_id = uuid.uuid4().hex
        service, method = SERVICES[n % 5], METHODS[n % 4]
        start = make_call(
            call_id, CallStatus.PENDING, created_at=now, service=service, method=method
        )
        end = make_call(call_id, CallStatus.SUCCESS, created_at=now, service=service, method=method)
        pairs.append((start, end))
    return pairs


def record(
    writer: BatchWriter, pairs: list[tuple[CallRecord, CallRecord]], rate: float | None
) -> tuple[float, float]:
    """(calls/s until everything is written, mean µs per submit)."""
    started = time.perf_counter()
    submitting = 0.0
    previous: list[tuple[CallRecord, CallRecord]] = []
    for step in range(0, len(pairs) + CHUNK, CHUNK):
        chunk = pairs[step : step + CHUNK]
        t0 = time.perf_counter()
        for start, _ in chunk:
            writer.submit(start)
        for _, end in previous:
            writer.submit(end)
        submitting += time.perf_counter() - t0
        previous = chunk
        if rate is not None:
            delay = started + (step + CHUNK) / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    assert writer.flush(timeout=300)
    elapsed = time.perf_counter() - started
    return len(pairs) / elapsed, submitting / (2 * len(pairs)) * 1e6


def through_monitor(monitor: Monitor, calls: int, rate: float) -> tuple[float, float]:
    """(calls/s until everything is written, mean µs of `begin_deferred` + `finish`): calls
    begun as the grpclib observer begins them, each finished one chunk later, so that the
    writer takes some while they run (pending, then final)."""
    states = [monitor.method_state(s, m, "unary") for s in SERVICES for m in METHODS]
    metadata = MultiDict([("user-agent", "bench"), ("x-request-id", "r1"), ("tenant", "t")])
    arrival = (metadata, "bench", ("127.0.0.1", 50000))
    begin = monitor.begin_deferred
    started = time.perf_counter()
    busy = 0.0
    running: list[Any] = []
    for step in range(0, calls + CHUNK, CHUNK):
        t0 = time.perf_counter()
        for call in running:
            call.finish(Code.OK)
        count = min(CHUNK, calls - step)
        running = [begin(states[(step + n) % 20], arrival, describe) for n in range(count)]
        busy += time.perf_counter() - t0
        delay = started + (step + CHUNK) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    assert monitor.writer.flush(timeout=300)
    elapsed = time.perf_counter() - started
    return calls / elapsed, busy / calls * 1e6


def monitor_row(calls: int, directory: Path) -> str:
    """Recording through a Monitor at the target rate; every call must end up stored, final."""
    label = f"through a `Monitor` (grpclib's path), offered {TARGET_RATE:,} calls/s"
    with Monitor(f"sqlite:///{directory / 'monitor.db'}") as monitor:
        rate_s, call_us = through_monitor(monitor, calls, TARGET_RATE)
        stored = monitor.store.requests(RequestQuery(limit=1)).count
        pending = monitor.store.requests(RequestQuery(status=CallStatus.PENDING, limit=1)).count
        health = monitor.health()
    loss = health["dropped"] + health["lost"]
    assert (stored, pending) == (calls - loss, 0), (stored, pending, health)
    return f"| {label} | {rate_s:,.0f} | {call_us:.2f} (a call) | {loss} |"


def direct(store: Store, pairs: list[tuple[CallRecord, CallRecord]]) -> float:
    """Calls/s writing the same records with write_batch, 500 records a batch, no thread."""
    records = [r for pair in pairs for r in pair]
    started = time.perf_counter()
    for start in range(0, len(records), 500):
        store.write_batch(records[start : start + 500], [])
    return len(pairs) / (time.perf_counter() - started)


def append_cost(count: int) -> float:
    queue: deque[int] = deque()
    started = time.perf_counter()
    for n in range(count):
        queue.append(n)
    return (time.perf_counter() - started) / count * 1e6


def bench_recording(calls: int, directory: Path) -> list[str]:
    rows = []
    for label, rate, queue_size in (
        (f"offered {TARGET_RATE:,} calls/s", TARGET_RATE, 10_000),
        (f"offered {2 * TARGET_RATE:,} calls/s", 2 * TARGET_RATE, 10_000),
        ("unpaced (queue holds everything)", None, 2 * calls + 1),
    ):
        store = open_store(f"sqlite:///{directory / f'rec-{rate}.db'}")
        writer = BatchWriter(store, queue_size=queue_size)
        rate_s, submit_us = record(writer, call_pairs(calls), rate)
        writer.close()
        loss = writer.dropped + writer.lost
        rows.append(f"| {label} | {rate_s:,.0f} | {submit_us:.2f} | {loss} |")
        store.close()
    rows.append(monitor_row(calls, directory))
    store = open_store(f"sqlite:///{directory / 'direct.db'}")
    rows.append(
        f"| `write_batch` directly (baseline) | {direct(store, call_pairs(calls)):,.0f} | | |"
    )
    store.close()
    rows.append(f"| bare `deque.append` (baseline) | | {append_cost(2 * calls):.2f} | |")
    return rows


# (b) Queries over a million calls.


def logged_calls(count: int, rng: random.Random) -> Iterator[list[CallRecord]]:
    now = datetime.now(timezone.utc)
    span = 24 * 3600
    batch: list[CallRecord] = []
    for n in range(count):
        service, method = SERVICES[n % 5], METHODS[n // 5 % 4]
        ok = rng.random() < 0.97
        batch.append(
            make_call(
                f"{n:08d}",
                CallStatus.SUCCESS if ok else CallStatus.ERROR,
                created_at=now - timedelta(seconds=rng.uniform(0, span)),
                duration_ms=rng.lognormvariate(2.0, 1.0),
                service=service,
                method=method,
            )
        )
        if len(batch) == BULK_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def median_ms(query: Callable[[], Any]) -> float:
    times = []
    for _ in range(QUERY_RUNS):
        started = time.perf_counter()
        query()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


RAW_OVERVIEW = (
    "SELECT count(*), sum(CASE WHEN status = 'success' THEN 1 ELSE 0 END),"
    " avg(duration_ms), count(DISTINCT service_name) FROM calls WHERE created_at >= ?"
)


def bench_queries(name: str, url: str, count: int) -> list[str]:
    store = open_store(url)
    assert isinstance(store, SqlStore)  # the baseline runs SQL on its backend
    started = time.perf_counter()
    for batch in logged_calls(count, random.Random(SEED)):
        store.write_batch(batch, [])
    load_s = time.perf_counter() - started
    since = datetime.now(timezone.utc) - timedelta(hours=24)
    cutoff = int(since.timestamp() * 1e6)
    timings = {
        "overview": median_ms(lambda: store.overview(since)),
        "services": median_ms(lambda: store.services(since)),
        "methods": median_ms(lambda: store.methods(since)),
        "requests (first page + count)": median_ms(lambda: store.requests(RequestQuery())),
    }
    raw = median_ms(
        lambda: store._backend.run(lambda c: c.execute(RAW_OVERVIEW, (cutoff,)), write=False)
    )
    store.close()
    rows = [
        f"| {name} | {q} | {ms:.1f} | {'yes' if ms <= TARGET_QUERY_MS else 'NO'} |"
        for q, ms in timings.items()
    ]
    ratio = raw / timings["overview"]
    rows.append(f"| {name} | overview from `calls` (baseline) | {raw:.1f} | {ratio:.0f}x slower |")
    rate = f"{count / load_s:,.0f} calls/s"
    rows.append(
        f"| {name} | loading {count:,} calls (`write_batch`) | {load_s * 1000:,.0f} | {rate} |"
    )
    return rows


@contextlib.contextmanager
def postgres_url() -> Iterator[str | None]:
    """A new database on RESTMON_TEST_POSTGRES_DSN's server or a throwaway one; None if
    there is no PostgreSQL here. The database is dropped afterwards."""
    external = os.environ.get("RESTMON_TEST_POSTGRES_DSN")
    bindir = find_bindir()
    if external:
        server_context: contextlib.AbstractContextManager[PostgresServer] = contextlib.nullcontext(
            PostgresServer(dsn=external)
        )
    elif bindir is not None:
        server_context = throwaway_server(bindir)
    else:
        yield None
        return
    with server_context as server:
        name = create_database(server)
        try:
            yield server.dsn_for(name)
        finally:
            drop_database(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--logged", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    header = machine_line()
    with tempfile.TemporaryDirectory() as tmp:
        recording = bench_recording(args.calls, Path(tmp))
        print("\n".join(recording), flush=True)
        queries = bench_queries("SQLite", f"sqlite:///{Path(tmp) / 'logged.db'}", args.logged)
        print("\n".join(queries), flush=True)
    if not args.no_postgres:
        with postgres_url() as url:
            if url is not None:
                queries += bench_queries("PostgreSQL", url, args.logged)
                print("\n".join(queries[-6:]), flush=True)
    body = render(header, args, recording, queries)
    print(body)
    if not args.no_write:
        write_section("monitor_store", body)


def render(header: str, args: argparse.Namespace, recording: list[str], queries: list[str]) -> str:
    return "\n".join(
        [
            "## Monitor store (`benchmarks/bench_monitor_store.py`)",
            "",
            header,
            "",
            f"Recording {args.calls:,} calls (pending + final records each) into SQLite through"
            " `BatchWriter`; target ≥ 5,000 calls/s with no loss:",
            "",
            "| run | calls/s | µs per submit | lost + dropped |",
            "|---|---|---|---|",
            *recording,
            "",
            f"Queries over {args.logged:,} logged calls (last 24 hours, median of {QUERY_RUNS});"
            f" target ≤ {TARGET_QUERY_MS:.0f} ms:",
            "",
            "| store | query | ms | within target |",
            "|---|---|---|---|",
            *queries,
            "",
            "How: overview, services and methods read only the rollup tables (one row per minute"
            " and one per hour, per service and method: counts, duration sum/min/max and a"
            " 64-bucket log histogram for p50/p95/p99), which `write_batch` keeps in step with"
            " the `calls` rows in the same transaction; a window reads whole hours from the hour"
            " table and the minutes before the first whole hour from the minute table, so it"
            " scans at most 59 minute rows and one row per hour, per method, not calls."
            " The request log reads `calls` through its indexes.",
        ]
    )


if __name__ == "__main__":
    main()
