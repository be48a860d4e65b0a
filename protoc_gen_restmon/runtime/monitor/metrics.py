"""Prometheus metrics of one Monitor: the usual gRPC server series and the writer's losses.

Names follow go-grpc-prometheus / py-grpc-prometheus, so existing dashboards work:
`grpc_server_started_total`, `grpc_server_handled_total` and `grpc_server_handling_seconds`.
Every Monitor has its own registry: two monitors in one process never share counters; except
in prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR` set, as `restmon serve
--workers N` does for its workers), where the counts go to files shared by every process and
`/metrics` reads them all (`shared_metrics.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from protoc_gen_restmon.runtime.monitor.series import (
    BUCKETS,
    HANDLED,
    LABELS,
    QUEUE_DEPTH,
    SECONDS,
    STARTED,
    STORE_UP,
    WRITER_COUNTERS,
    MethodSeries,
)
from protoc_gen_restmon.runtime.monitor.shared_metrics import SharedMetrics, multiprocess_dir_set


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
            multiprocess_dir = multiprocess_dir_set()
        if multiprocess_dir:
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
