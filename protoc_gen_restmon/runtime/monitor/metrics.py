"""Prometheus metrics of one Monitor: the usual gRPC server series and the writer's losses.

Names follow go-grpc-prometheus / py-grpc-prometheus, so existing dashboards work:
`grpc_server_started_total`, `grpc_server_handled_total` and `grpc_server_handling_seconds`.
Every Monitor has its own registry: two monitors in one process never share counters; except
in prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR` set, as `restmon serve
--workers N` does for its workers), where the counts go to files shared by every process and
`/metrics` reads them all (`shared_metrics.py`).
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from protoc_gen_restmon.runtime.status import Code

if TYPE_CHECKING:
    from protoc_gen_restmon.runtime.monitor.shared_metrics import SharedMetrics, SharedSeries

# prometheus_client's default histogram buckets, in seconds (+Inf is implied).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
LABELS = ["grpc_type", "grpc_service", "grpc_method"]
FOLD_AT = 4096  # events of one method waiting to be folded: bounds the memory between scrapes
STARTED = ("grpc_server_started_total", "RPCs started on the server.")
HANDLED = ("grpc_server_handled_total", "RPCs completed on the server, whatever their status.")
SECONDS = ("grpc_server_handling_seconds", "Time from the start of an RPC to its end, in seconds.")
# The writer's counters: (metric name, documentation, key of BatchWriter.stats()).
WRITER_COUNTERS = (
    ("restmon_monitor_records_recorded", "Call records written to the store.", "recorded"),
    ("restmon_monitor_records_dropped", "Call records dropped: queue full.", "dropped"),
    ("restmon_monitor_records_lost", "Call records lost: the store failed.", "lost"),
    ("restmon_monitor_store_errors", "Failed writes to the store.", "store_errors"),
)
QUEUE_DEPTH = ("restmon_monitor_queue_depth", "Call records waiting to be written.")
STORE_UP = ("restmon_monitor_store_up", "1 when the last write to the store succeeded.")


class MethodSeries:
    """One method's counters and histogram.

    The hot path only appends to a deque (atomic under the GIL, so no lock): `start` appends
    None, `finish` a (code, seconds) pair; grpclib's observer appends to `events` itself. The
    events are folded into plain numbers, under a lock, when scraped or when FOLD_AT are
    waiting; prometheus_client's labelled Counter and Histogram cost several µs per call, a
    locked update about one in a busy server.

    In multiprocess mode each fold also adds what it folded to the shared files (`shared`).
    """

    __slots__ = (
        "_lock",
        "buckets",
        "events",
        "handled",
        "labels",
        "seconds_sum",
        "shared",
        "started",
    )

    def __init__(self, labels: tuple[str, str, str], shared: SharedSeries | None = None) -> None:
        self.labels = labels
        self.shared = shared
        self.started = 0
        self.handled: dict[Code, int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)  # per bucket, not cumulative; the last is +Inf
        self.seconds_sum = 0.0
        self.events: deque[tuple[Code, float] | None] = deque()
        self._lock = threading.Lock()

    def start(self) -> None:
        self.events.append(None)

    def finish(self, code: Code, seconds: float) -> None:
        events = self.events
        events.append((code, seconds))
        if len(events) >= FOLD_AT:
            self.fold()

    def fold(self) -> None:
        # popleft is atomic: events appended meanwhile by other threads wait for the next fold.
        events = self.events
        with self._lock:
            started, codes, durations = 0, Counter[Code](), []
            for _ in range(len(events)):
                event = events.popleft()
                if event is None:
                    started += 1
                    continue
                code, seconds = event
                codes[code] += 1
                durations.append(seconds)
                self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1  # first le >= seconds
                self.seconds_sum += seconds
            self.started += started
            for code, count in codes.items():
                self.handled[code] = self.handled.get(code, 0) + count
            if self.shared is not None:  # under the lock: each event is shared exactly once
                self.shared.add(started, codes, durations)

    def snapshot(self) -> tuple[int, dict[Code, int], list[int], float]:
        self.fold()
        with self._lock:
            return self.started, dict(self.handled), list(self.buckets), self.seconds_sum


class MonitorMetrics:
    """A registry per Monitor; `series(...)` is created once per method and cached.

    `multiprocess_dir` (default: `PROMETHEUS_MULTIPROC_DIR`): prometheus_client's multiprocess
    mode, where the registry reads every process's files (`shared_metrics.SharedMetrics`)."""

    def __init__(
        self,
        writer_stats: Callable[[], Mapping[str, Any]],
        *,
        multiprocess_dir: str | None = None,
    ) -> None:
        self._series: dict[tuple[str, str, str], MethodSeries] = {}
        self._series_lock = threading.Lock()
        self._shared: SharedMetrics | None = None
        if multiprocess_dir is None:
            from protoc_gen_restmon.runtime.monitor.shared_metrics import multiprocess_dir_set

            multiprocess_dir = multiprocess_dir_set()
        if multiprocess_dir:
            from protoc_gen_restmon.runtime.monitor.shared_metrics import SharedMetrics

            self._shared = SharedMetrics(multiprocess_dir, writer_stats, self.all_series)
            self.registry = self._shared.registry
            return
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(CallCollector(self))
        self.registry.register(WriterCollector(writer_stats))

    def series(self, grpc_type: str, service: str, method: str) -> MethodSeries:
        key = (grpc_type, service, method)
        found = self._series.get(key)
        if found is None:
            with self._series_lock:
                found = self._series.get(key)
                if found is None:
                    shared = None if self._shared is None else self._shared.series(key)
                    found = self._series[key] = MethodSeries(key, shared)
        return found

    def all_series(self) -> list[MethodSeries]:
        with self._series_lock:
            return sorted(self._series.values(), key=lambda s: s.labels)

    def text(self) -> bytes:
        if self._shared is not None:  # this process's counts up to now, the others' as exported
            self._shared.export()
        return generate_latest(self.registry)

    def close(self) -> None:
        """Multiprocess mode: the last counts exported, the export thread stopped."""
        if self._shared is not None:
            self._shared.close()


class CallCollector(Collector):
    """grpc_server_started_total, grpc_server_handled_total, grpc_server_handling_seconds."""

    def __init__(self, metrics: MonitorMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        started = CounterMetricFamily(*STARTED, labels=LABELS)
        handled = CounterMetricFamily(*HANDLED, labels=[*LABELS, "grpc_code"])
        seconds = HistogramMetricFamily(*SECONDS, labels=LABELS)
        for series in self._metrics.all_series():
            labels = list(series.labels)
            count, by_code, buckets, total = series.snapshot()
            started.add_metric(labels, count)
            for code, value in sorted(by_code.items()):
                handled.add_metric([*labels, code.name], value)
            seconds.add_metric(labels, _cumulative(buckets), sum_value=total)
        yield from (started, handled, seconds)


def _cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    bounds = [*(repr(b) for b in BUCKETS), "+Inf"]
    found, running = [], 0
    for bound, count in zip(bounds, buckets, strict=True):
        running += count
        found.append((bound, float(running)))
    return found


class WriterCollector(Collector):
    """The batch writer's counters, read when scraped: records dropped (queue full), lost
    (the store failed), recorded, and the queue depth."""

    def __init__(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for name, documentation, key in WRITER_COUNTERS:
            yield CounterMetricFamily(name, documentation, value=float(stats.get(key, 0)))
        yield GaugeMetricFamily(*QUEUE_DEPTH, value=float(stats.get("queue_depth", 0)))
        yield GaugeMetricFamily(*STORE_UP, value=1.0 if stats.get("store_ok", True) else 0.0)
