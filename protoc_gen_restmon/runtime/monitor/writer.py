"""`BatchWriter`: a bounded in-memory queue and a thread that writes it to a store in batches.

`submit` and `use_key` never block and never raise: they append to a deque (a few hundred
nanoseconds) or, when `queue_size` items are waiting, drop the item and count it. `submit`
takes a finished `CallRecord` or a `LiveCall`, which the thread turns into its record when it
takes it (pending or final: see `LiveCall`). The thread sleeps `flush_interval` between
batches (or wakes as soon as a batch is full), so that it takes the GIL from the event loop
once per batch, not once per call; it merges the pending and final records of each call and
the uses of each key, and calls `store.write_batch`. A batch that
fails is retried with exponential backoff `max_retries` times, then counted as lost; the next
batch tries the store again, so recording resumes by itself when the store is back. A lost
batch is logged as a warning; a server writes such repeats once per interval (`log_throttle`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from protoc_gen_restmon.runtime.monitor.model import (
    CallRecord,
    KeyUse,
    LiveCall,
    Store,
    fold_key_uses,
    merge_calls,
)

T = TypeVar("T")

logger = logging.getLogger(__name__)


class BatchWriter:
    def __init__(
        self,
        store: Store,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        max_retries: int = 5,
        retry_backoff: float = 0.05,
        retention: timedelta | None = None,
        purge_interval: timedelta = timedelta(minutes=10),
    ) -> None:
        self.store = store
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.retention = retention
        self.purge_interval = purge_interval
        # Every item (record or key use) accepted by submit/use_key ends up counted once in
        # `recorded` or `lost`, or is still in the queue; refused ones are in `dropped`.
        self.recorded = 0  # records and key uses written
        self.dropped = 0  # records and key uses refused because the queue was full
        self.lost = 0  # records and key uses in batches the store refused for good
        self.store_errors = 0  # failed write attempts (each retry counts)
        self.last_error = ""
        self.store_ok = True
        self.purged = 0
        # The queue of calls; a hot path may append to it itself, as `submit` does.
        self.records: deque[CallRecord | LiveCall] = deque()
        self._uses: deque[KeyUse] = deque()
        self._drop_lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._stopping = False
        self._next_purge = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="restmon-writer", daemon=True)
        self._thread.start()

    # The hot path: called on every RPC.

    def submit(self, record: CallRecord | LiveCall) -> bool:
        """Queue a record or a live call; False (and counted in `dropped`) when the queue is
        full. Called once or twice per RPC: `_offer`, inlined."""
        depth = len(self.records)
        if depth >= self.queue_size:
            with self._drop_lock:
                self.dropped += 1
            return False
        self.records.append(record)
        if depth + 1 >= self.batch_size:
            self._wake.set()
        return True

    def refused(self) -> None:
        """Count a call a hot path could not queue (the queue was full)."""
        with self._drop_lock:
            self.dropped += 1

    def wake(self) -> None:
        """Write now: a hot path queued a batch."""
        self._wake.set()

    def use_key(self, use: KeyUse) -> bool:
        """Queue a key use; False (and counted in `dropped`) when the queue is full."""
        return self._offer(self._uses, use)

    def _offer(self, queue: deque[T], item: T) -> bool:
        # len() then append() is not atomic: concurrent submitters may overshoot the bound by
        # at most one item each, which is harmless; the drop counter is exact (locked).
        depth = len(queue)
        if depth >= self.queue_size:
            with self._drop_lock:
                self.dropped += 1
            return False
        queue.append(item)
        if depth + 1 >= self.batch_size:
            self._wake.set()
        return True

    @property
    def queue_depth(self) -> int:
        return len(self.records) + len(self._uses)

    def stats(self) -> dict[str, Any]:
        return {
            "recorded": self.recorded,
            "dropped": self.dropped,
            "lost": self.lost,
            "store_errors": self.store_errors,
            "last_error": self.last_error,
            "queue_depth": self.queue_depth,
            "store_ok": self.store_ok,
        }

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the queue is empty and nothing is being written; False on timeout."""

        def written() -> bool:
            return not self._busy and not self.records and not self._uses

        if not self._thread.is_alive():  # closed: nothing more will be written
            return written()
        with self._idle:
            self._wake.set()
            return self._idle.wait_for(written, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (waiting at most `timeout`), then stop the thread. Items
        submitted afterwards stay in the queue, unwritten (`queue_depth`)."""
        if self._stopping:
            return
        self.flush(timeout)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    # The writer thread.

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._drain()
            self._maybe_purge()

    def _drain(self) -> None:
        with self._idle:
            self._busy = True
        try:
            while self.records or self._uses:
                records = _records(_take(self.records, self.batch_size))
                uses = _take(self._uses, self.batch_size)
                self._write(merge_calls(records), fold_key_uses(uses), len(records) + len(uses))
        finally:
            with self._idle:
                self._busy = False
                self._idle.notify_all()

    def _write(self, records: list[CallRecord], uses: list[KeyUse], items: int) -> None:
        for attempt in range(self.max_retries + 1):
            try:
                self.store.write_batch(records, uses)
            except Exception as error:  # any failure: the RPCs must never see it
                self.store_errors += 1
                self.last_error = f"{type(error).__name__}: {error}"
                self.store_ok = False
                if attempt < self.max_retries and not self._stopping:
                    time.sleep(self.retry_backoff * 2**attempt)
                    continue
                self.lost += items
                logger.warning(
                    "monitor store failed, %d record(s) lost: %s", items, self.last_error
                )
                return
            self.recorded += items
            self.store_ok = True
            return

    def _maybe_purge(self) -> None:
        if self.retention is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.purge_interval.total_seconds()
        try:
            self.purged += self.store.purge_before(datetime.now(timezone.utc) - self.retention)
        except Exception as error:  # retried at the next interval
            self.store_errors += 1
            self.last_error = f"purge: {type(error).__name__}: {error}"
            logger.warning("monitor store failed to purge old records: %s", self.last_error)


def _records(items: list[CallRecord | LiveCall]) -> list[CallRecord]:
    """The records of queued items; a live call queued again after its final record was
    written (it ended while the batch was being taken) has nothing more to write."""
    found = []
    for item in items:
        record = item if isinstance(item, CallRecord) else item.record()
        if record is not None:
            found.append(record)
    return found


def _take(queue: deque[T], limit: int) -> list[T]:
    taken: list[T] = []
    while queue and len(taken) < limit:
        taken.append(queue.popleft())
    return taken
