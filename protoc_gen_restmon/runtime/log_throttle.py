"""Log records that repeat are written once per interval, with a count, never once per event.

A failure that repeats — `accept()` out of descriptors (asyncio's `_accept_connection` reports it
to the loop's exception handler, which logs it with a traceback, each time), a store or an
upstream that is down, a client sending garbage — must not fill the disk. The filter below keys
a record by its logger, level, message template (first line) and exception type. The first
record of a key is written as it is; the next ones within `interval` seconds are counted and
dropped; the first one after the interval is written as one line, tracebackless, with the count:

    socket.accept() out of system resource [OSError: [Errno 24] Too many open files]
        (1234 more like this in the last 10 s)

As the hpack redaction (`log_redaction`), the filter is attached to the loggers themselves
(`THROTTLED_LOGGERS`), since a logger's filters see only the records made on it; servers do
that when they start (`throttle_repeated_logs()`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Final

__all__ = ["DEFAULT_INTERVAL", "THROTTLED_LOGGERS", "LogThrottle", "throttle_repeated_logs"]

DEFAULT_INTERVAL: Final = 10.0
THROTTLED_LOGGERS: Final = (
    "asyncio",  # the loop's exception handler: accept() failures, callbacks that raise
    "uvicorn.error",  # "Invalid HTTP request received.", one per bad request
    "grpclib.server",
    "grpclib.protocol",
    "protoc_gen_restmon.gateway",
    "protoc_gen_restmon.admin",
    "protoc_gen_restmon.runtime.connections",
    "protoc_gen_restmon.runtime.monitor.monitor",
    "protoc_gen_restmon.runtime.monitor.shared_metrics",
    "protoc_gen_restmon.runtime.monitor.writer",
    "protoc_gen_restmon.runtime.serving",
    "protoc_gen_restmon.runtime.workers",  # a worker that keeps dying: one line per restart
)
_Key = tuple[str, int, str, str]
_KEYS_MAX: Final = 1000  # keys remembered; more (messages that embed their values) start over


class LogThrottle(logging.Filter):
    """Drops the records of a key seen less than `interval` seconds ago, counting them."""

    def __init__(
        self, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()  # the monitor's writer thread logs too
        # key -> (when its last record was written, how many were dropped since)
        self._seen: dict[_Key, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = _key(record)
        now = self.clock()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.interval:
                self._seen[key] = (last[0], last[1] + 1)
                return False
            if len(self._seen) >= _KEYS_MAX:
                self._seen.clear()
            self._seen[key] = (now, 0)
        if last is not None:
            _summarize(record, last[1], now - last[0])
        return True


def _key(record: logging.LogRecord) -> _Key:
    error = record.exc_info[1] if record.exc_info else None
    first_line = str(record.msg).partition("\n")[0]
    return (record.name, record.levelno, first_line, type(error).__name__ if error else "")


def _summarize(record: logging.LogRecord, dropped: int, seconds: float) -> None:
    """A repeat is one line: the message's first line, the exception's, the count."""
    line = record.getMessage().partition("\n")[0]
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        line += f" [{type(error).__name__}: {error}]"
    if dropped:
        line += f" ({dropped} more like this in the last {seconds:.0f} s)"
    record.msg, record.args = line, None
    record.exc_info, record.exc_text, record.stack_info = None, None, None


def throttle_repeated_logs(
    names: Iterable[str] = THROTTLED_LOGGERS, interval: float = DEFAULT_INTERVAL
) -> None:
    """Attach a LogThrottle to each logger named (once: calling again does nothing more)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, LogThrottle) for f in logger.filters):
            logger.addFilter(LogThrottle(interval))
