"""The Monitor's metrics in prometheus_client's multiprocess mode, for servers of several processes.

With `PROMETHEUS_MULTIPROC_DIR` set before prometheus_client is imported (`restmon serve
--workers N` sets it for its workers: a fresh directory per run), prometheus_client keeps every
Counter, Gauge and Histogram value in a memory-mapped file of the process
(`counter_<pid>.db`, …), and a `MultiProcessCollector` sums the files of all processes: any
process answers `/metrics` with the totals of the whole server. Counts of a process that has
exited stay in the totals (counters never go down); its live gauges are removed by the parent
with `prometheus_client.multiprocess.mark_process_dead`.

The hot path stays as it is (`metrics.MethodSeries` appends to a deque): what a fold takes
from the deque is added to the files (about 2.5 µs per call, prometheus_client's Counter and
Histogram), and a thread folds every `EXPORT_INTERVAL` seconds, so the totals another process
reads are at most that old. The writer's counters are exported as differences since the last
export; the queue depth is summed over the live processes (`livesum`), the store is up when it
is up in every live process (`livemin`).

The metric objects are created once per process: two objects of one name and labels in one
process would overwrite each other's values in the file, so the monitors of one process (there
is one per worker) count into the same series.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections import Counter as Tally
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector

from protoc_gen_restmon.runtime.errors import ConfigError
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
from protoc_gen_restmon.runtime.status import Code

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXPORT_INTERVAL = 0.5  # seconds between two exports of a process's counts to its files


def multiprocess_dir_set() -> str | None:
    """The multiprocess directory of this process's environment, if any."""
    return os.environ.get(MULTIPROC_ENV) or None


@dataclass(frozen=True)
class Families:
    """The process's metric objects, unregistered: the registry reads their files instead."""

    started: Counter
    handled: Counter
    seconds: Histogram
    writer: Mapping[str, Counter]  # by BatchWriter.stats() key
    queue_depth: Gauge
    store_up: Gauge


@functools.cache
def families() -> Families:
    if values.ValueClass is values.MutexValue:  # decided when prometheus_client was imported
        raise ConfigError(
            f"{MULTIPROC_ENV} must be set before prometheus_client is first imported "
            "(in the environment the process starts with)"
        )
    return Families(
        started=Counter(*STARTED, LABELS, registry=None),
        handled=Counter(*HANDLED, [*LABELS, "grpc_code"], registry=None),
        seconds=Histogram(*SECONDS, LABELS, buckets=BUCKETS, registry=None),
        writer={
            key: Counter(name, documentation, registry=None)
            for name, documentation, key in WRITER_COUNTERS
        },
        queue_depth=Gauge(*QUEUE_DEPTH, registry=None, multiprocess_mode="livesum"),
        store_up=Gauge(*STORE_UP, registry=None, multiprocess_mode="livemin"),
    )


class SharedSeries:
    """One method's series in the files; `add` is called by `MethodSeries.fold`, under its lock."""

    __slots__ = ("_codes", "_handled", "_labels", "seconds", "started")

    def __init__(self, found: Families, labels: tuple[str, str, str]) -> None:
        self._labels = labels
        self._handled = found.handled
        self._codes: dict[Code, Any] = {}
        self.started = found.started.labels(*labels)
        self.seconds = found.seconds.labels(*labels)

    def add(self, started: int, codes: Tally[Code], durations: list[float]) -> None:
        if started:
            self.started.inc(started)
        for code, count in codes.items():
            child = self._codes.get(code)
            if child is None:
                child = self._codes[code] = self._handled.labels(*self._labels, code.name)
            child.inc(count)
        for seconds in durations:
            self.seconds.observe(seconds)


class SharedMetrics:
    """The multiprocess half of a `MonitorMetrics`: its registry, its series, the export thread."""

    def __init__(
        self,
        path: str,
        writer_stats: Callable[[], Mapping[str, Any]],
        all_series: Callable[[], list[MethodSeries]],
    ) -> None:
        if not os.path.isdir(path):
            raise ConfigError(f"{MULTIPROC_ENV}={path}: not a directory")
        self._families = families()
        self._writer_stats = writer_stats
        self._all_series = all_series
        self._exported = {key: 0 for key in self._families.writer}
        self._lock = threading.Lock()
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=path)  # type: ignore[no-untyped-call]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="restmon-metrics", daemon=True)
        self._thread.start()

    def series(self, labels: tuple[str, str, str]) -> SharedSeries:
        return SharedSeries(self._families, labels)

    def export(self) -> None:
        """This process's counts up to now, into its files."""
        with self._lock:
            for series in self._all_series():
                series.fold()
            stats = self._writer_stats()
            for key, counter in self._families.writer.items():
                now = int(stats.get(key, 0))
                if now > self._exported[key]:
                    counter.inc(now - self._exported[key])
                    self._exported[key] = now
            self._families.queue_depth.set(float(stats.get("queue_depth", 0)))
            self._families.store_up.set(1.0 if stats.get("store_ok", True) else 0.0)

    def _run(self) -> None:
        while not self._stop.wait(EXPORT_INTERVAL):
            try:
                self.export()
            except Exception:  # a full disk, say: the next tick tries again
                logger.exception("cannot export the metrics to %s", MULTIPROC_ENV)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.export()
