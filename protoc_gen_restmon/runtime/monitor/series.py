"""What the monitor measures: the metric names, and one method's series (events folded into counts).

Kept apart from `metrics.py` (the registry and its collectors) so that `shared_metrics.py`
(multiprocess mode) reads the same names and series without importing the registry that uses it.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter, deque
from typing import Protocol

from protoc_gen_restmon.runtime.status import Code


class SharedSink(Protocol):
    """Where a fold also goes in multiprocess mode (`shared_metrics.SharedSeries`)."""

    def add(self, started: int, codes: Counter[Code], durations: list[float]) -> None: ...


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

    def __init__(self, labels: tuple[str, str, str], shared: SharedSink | None = None) -> None:
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
