"""Prometheus metrics and health of the Monitor, after real calls on a grpclib server.

The exposition text is parsed with prometheus_client's own parser, so names, labels and
values are checked as a scraper reads them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from types import ModuleType

import pytest
from grpclib import GRPCError
from prometheus_client.parser import text_string_to_metric_families

from protoc_gen_restmon.runtime.gateway.observe import CallInfo
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from protoc_gen_restmon.runtime.monitor.series import BUCKETS, FOLD_AT, MethodSeries
from protoc_gen_restmon.runtime.status import Code
from tests.support.monitor_servers import controlled_bookstore, grpclib_server, recorded

SERVICE = "bookstore.v1.BookstoreService"
Labels = frozenset[tuple[str, str]]


def samples(monitor: Monitor) -> dict[tuple[str, Labels], float]:
    """Every sample of the exposition: (sample name, labels) -> value."""
    text = monitor.metrics().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def method_labels(method: str, grpc_type: str = "unary", **extra: str) -> Labels:
    labels = {"grpc_type": grpc_type, "grpc_service": SERVICE, "grpc_method": method, **extra}
    return frozenset(labels.items())


@pytest.fixture(name="monitor")
def fixture_monitor(store_url: str, bookstore_pb: ModuleType) -> Iterator[Monitor]:
    monitor = Monitor(store_url, packages=[bookstore_pb])
    try:
        yield monitor
    finally:
        monitor.close()


def get_shelves(monitor: Monitor | None, pb: ModuleType, *shelves: str) -> int:
    """GetShelf for each shelf on one monitored server; how many failed."""
    failed = 0

    async def scenario() -> None:
        nonlocal failed
        async with grpclib_server(monitor, controlled_bookstore(pb)) as channel:
            stub = pb.BookstoreServiceStub(channel)
            for shelf in shelves:
                try:
                    await stub.get_shelf(pb.GetShelfRequest(shelf=shelf))
                except GRPCError:
                    failed += 1

    asyncio.run(scenario())
    return failed


def test_metrics_count_started_handled_and_handling_time(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    assert get_shelves(monitor, bookstore_pb, "fiction", "fiction", "fail-5") == 1
    found = samples(monitor)
    assert found[("grpc_server_started_total", method_labels("GetShelf"))] == 3
    handled = "grpc_server_handled_total"
    assert found[(handled, method_labels("GetShelf", grpc_code="OK"))] == 2
    assert found[(handled, method_labels("GetShelf", grpc_code="NOT_FOUND"))] == 1
    count = found[("grpc_server_handling_seconds_count", method_labels("GetShelf"))]
    total = found[("grpc_server_handling_seconds_sum", method_labels("GetShelf"))]
    assert count == 3 and 0 < total < 5
    infinite = method_labels("GetShelf", le="+Inf")
    assert found[("grpc_server_handling_seconds_bucket", infinite)] == 3


def test_metrics_report_the_writer(monitor: Monitor, bookstore_pb: ModuleType) -> None:
    get_shelves(monitor, bookstore_pb, "fiction")
    recorded(monitor)  # flushed
    found = samples(monitor)
    # One record, or two when the writer took the call while it ran (pending, then final).
    assert found[("restmon_monitor_records_recorded_total", frozenset())] in (1, 2)
    assert found[("restmon_monitor_records_dropped_total", frozenset())] == 0
    assert found[("restmon_monitor_records_lost_total", frozenset())] == 0
    assert found[("restmon_monitor_queue_depth", frozenset())] == 0
    assert found[("restmon_monitor_store_up", frozenset())] == 1


def test_full_queue_drops_records_and_degrades_health(
    store_url: str, bookstore_pb: ModuleType
) -> None:
    monitor = Monitor(store_url, queue_size=0)  # every record is refused by the queue
    try:
        assert monitor.health()["status"] == "healthy"
        assert get_shelves(monitor, bookstore_pb, "fiction") == 0  # the call still succeeds
        health = monitor.health()
        # One call, queued once: one dropped item.
        assert (health["status"], health["dropped"], health["store_ok"]) == ("degraded", 1, True)
        assert samples(monitor)[("restmon_monitor_records_dropped_total", frozenset())] == 1
        assert recorded(monitor) == []
    finally:
        monitor.close()


def test_health_reports_services_and_uptime(monitor: Monitor) -> None:
    health = monitor.health()
    assert health["status"] == "healthy"
    assert health["server_running"] is True
    assert health["registered_services"] == 1
    assert monitor.registered_services() == [SERVICE]
    assert 0 <= health["uptime_seconds"] < 60
    monitor.close()
    assert monitor.health()["server_running"] is False


def test_each_monitor_counts_its_own_calls(
    monitor: Monitor, store_url: str, bookstore_pb: ModuleType
) -> None:
    other = Monitor(store_url)
    try:
        get_shelves(monitor, bookstore_pb, "fiction")
        assert ("grpc_server_started_total", method_labels("GetShelf")) in samples(monitor)
        assert not any(name == "grpc_server_started_total" for name, _ in samples(other))
    finally:
        other.close()


def test_store_failure_never_fails_a_call_and_is_reported(
    store_url: str, bookstore_pb: ModuleType
) -> None:
    monitor = Monitor(store_url)
    try:
        monitor.store.close()  # every write from now on fails
        assert get_shelves(monitor, bookstore_pb, "fiction") == 0
        assert monitor.writer.flush(30)
        health = monitor.health()
        assert (health["status"], health["store_ok"]) == ("degraded", False)
        # One record, or two when the writer took the call while it ran (pending, then final).
        assert health["lost"] in (1, 2)
        assert (
            samples(monitor)[("restmon_monitor_records_lost_total", frozenset())] == health["lost"]
        )
        assert samples(monitor)[("restmon_monitor_store_up", frozenset())] == 0
    finally:
        monitor.close()


def test_grpc_type_of_an_unknown_method_comes_from_the_call_info(store_url: str) -> None:
    """A gateway tells the cardinality in `CallInfo.grpc_type`; without it, "unary"."""
    monitor = Monitor(store_url)  # no packages: the monitor knows no method
    try:
        info = CallInfo(SERVICE, "WatchShelf", "http", "", grpc_type="server_stream")
        monitor.begin(info).finish(Code.OK)
        monitor.begin(CallInfo(SERVICE, "GetShelf", "http", "")).finish(Code.NOT_FOUND)
        found = samples(monitor)
        assert found[("grpc_server_started_total", method_labels("WatchShelf", "server_stream"))]
        handled = method_labels("GetShelf", grpc_code="NOT_FOUND")
        assert found[("grpc_server_handled_total", handled)] == 1
    finally:
        monitor.close()


def test_series_counts_exactly_from_many_threads() -> None:
    """Lock-free `start`/`finish` from several threads, folded on the way (FOLD_AT) and when
    read: not one event lost, every duration in its bucket."""
    series = MethodSeries(("unary", SERVICE, "GetShelf"))
    threads, calls = 4, 3 * FOLD_AT
    codes = (Code.OK, Code.NOT_FOUND, Code.DEADLINE_EXCEEDED)

    def hammer() -> None:
        for i in range(calls):
            series.start()
            series.finish(codes[i % 3], BUCKETS[i % len(BUCKETS)])

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    started, handled, buckets, total = series.snapshot()
    assert started == threads * calls
    assert handled == {code: threads * calls // 3 for code in codes}
    expected = [0] * (len(BUCKETS) + 1)
    for i in range(calls):
        expected[i % len(BUCKETS)] += threads  # a bound falls in its own bucket (le)
    assert buckets == expected
    assert total == pytest.approx(threads * sum(BUCKETS[i % len(BUCKETS)] for i in range(calls)))
