"""Rollups of the call log: per minute and per hour, per service and method.

Each row holds counts (total, finished, successful, timed; timed-out and cancelled calls;
finished calls per gRPC code), the duration sum, min and max and a duration histogram
(`histogram.py`). `write_batch` adds to the rows of both tables in the
same transaction as the calls, so the statistics queries never read `calls`. A window
[since, now] reads whole hours from `call_rollups_hour` and the minutes before the first whole
hour from `call_rollups_minute`: at most 59 minute rows plus one hour row per hour, per method.

Besides one row per method, each period has one row per service (method_name `ANY`) and one
for the whole server (service_name and method_name `ANY`; schema migration 3), so the time
series reads one row per bucket instead of one per method (`series.py`). No gRPC service or
method is named `ANY` (''); `window` reads the per-method rows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from protoc_gen_restmon.runtime.monitor.model import CallRecord, CallStatus
from protoc_gen_restmon.runtime.monitor.stores import histogram
from protoc_gen_restmon.runtime.monitor.stores.connections import Cursor, Dialect
from protoc_gen_restmon.runtime.monitor.stores.rows import MICROS_PER_MINUTE, to_micros
from protoc_gen_restmon.runtime.status import Code

# Added by the second migration (schema.py): rows written before it count these as zero.
STATUS_COLUMNS = ("timeouts", "cancels")
CODE_COLUMNS = {code.name: f"code_{code.name.lower()}" for code in Code}
SUMS = (
    "total",
    "finished",
    "successful",
    "timed",
    "duration_sum",
    *histogram.COLUMNS,
    *STATUS_COLUMNS,
    *CODE_COLUMNS.values(),
)
_INDEX = {column: index for index, column in enumerate(SUMS)}
EXTREMES = ("duration_min", "duration_max")
KEY = ("service_name", "method_name")
ANY = ""  # the service_name / method_name of the per-service and whole-server rows
PER_METHOD = f"method_name <> '{ANY}'"  # a condition selecting the per-method rows only


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    period: str  # the key column: minutes or hours since the epoch
    minutes: int  # per period


MINUTE = Table("call_rollups_minute", "minute", 1)
HOUR = Table("call_rollups_hour", "hour", 60)
TABLES = (MINUTE, HOUR)


def since_minute(since: datetime) -> int:
    """Windows start at the beginning of the minute `since` falls in (rollup granularity)."""
    return to_micros(since) // MICROS_PER_MINUTE


class Changes:
    """What one batch adds to each (minute, service, method) rollup row, the per-service and
    whole-server rows (`ANY`) included."""

    def __init__(self) -> None:
        # (minute, service, method) -> [*SUMS, duration_min, duration_max]
        self.rows: dict[tuple[int, str, str], list[Any]] = {}

    def add(self, record: CallRecord, minute: int, *, new: bool) -> None:
        """`record` was inserted (`new`) or turned a stored pending row final: its method's,
        its service's and the server's rows change alike."""
        service, method = record.service_name, record.method_name
        for key in ((minute, service, method), (minute, service, ANY), (minute, ANY, ANY)):
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = [0] * len(SUMS) + [None, None]
            _add(row, record, new)

    def params(self, table: Table) -> list[tuple[Any, ...]]:
        """Parameters for `upsert_sql(table)`: the minute rows, merged per period."""
        merged: dict[tuple[int, str, str], list[Any]] = {}
        for (minute, service, method), row in self.rows.items():
            key = (minute // table.minutes, service, method)
            seen = merged.get(key)
            merged[key] = list(row) if seen is None else _merge(seen, row)
        # In key order: writers in several processes then lock the rows they share in the
        # same order (PostgreSQL would otherwise find a deadlock and abort one batch).
        return [(*key, *row) for key, row in sorted(merged.items())]


def _add(row: list[Any], record: CallRecord, new: bool) -> None:
    row[0] += new
    if record.status is CallStatus.PENDING:
        return
    row[1] += 1
    row[2] += record.status is CallStatus.SUCCESS
    row[_INDEX["timeouts"]] += record.status is CallStatus.TIMEOUT
    row[_INDEX["cancels"]] += record.status is CallStatus.CANCELLED
    row[_INDEX[code_column(record.grpc_status_code)]] += 1
    if record.duration_ms is not None:
        _add_duration(row, record.duration_ms)


def code_column(code: str) -> str:
    """The column counting `code` (a google.rpc.Code name); anything else counts as UNKNOWN."""
    return CODE_COLUMNS.get(code, CODE_COLUMNS["UNKNOWN"])


def _add_duration(row: list[Any], duration: float) -> None:
    row[3] += 1
    row[4] += duration
    row[5 + histogram.bucket_of(duration)] += 1
    row[-2] = duration if row[-2] is None else min(row[-2], duration)
    row[-1] = duration if row[-1] is None else max(row[-1], duration)


def _merge(a: list[Any], b: list[Any]) -> list[Any]:
    sums = [x + y for x, y in zip(a[: len(SUMS)], b[: len(SUMS)], strict=True)]
    low = min((v for v in (a[-2], b[-2]) if v is not None), default=None)
    high = max((v for v in (a[-1], b[-1]) if v is not None), default=None)
    return [*sums, low, high]


def upsert_sql(table: Table, dialect: Dialect) -> str:
    columns = (table.period, *KEY, *SUMS, *EXTREMES)
    added = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in SUMS)
    low = _combine(dialect.least, table.name, "duration_min")
    high = _combine(dialect.greatest, table.name, "duration_max")
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)})"
        f" VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT ({table.period}, {', '.join(KEY)}) DO UPDATE SET {added},"
        f" duration_min = {low}, duration_max = {high}"
    )


def _combine(function: str, table: str, column: str) -> str:
    """`function` of the stored and the new value, either of which may be NULL."""
    old, new = f"{table}.{column}", f"excluded.{column}"
    return f"{function}(coalesce({old}, {new}), coalesce({new}, {old}))"


def write(cur: Cursor, dialect: Dialect, changes: Changes) -> None:
    if changes.rows:
        for table in TABLES:
            cur.executemany(upsert_sql(table, dialect), changes.params(table))


_WINDOW_COLUMNS = ", ".join((*KEY, *SUMS, *EXTREMES))


def window(since: datetime) -> tuple[str, tuple[int, ...]]:
    """A FROM clause (`rollups`, with columns KEY, SUMS and EXTREMES) of the per-method rows
    covering the minutes from `since`'s on, and its parameters."""
    first_minute = since_minute(since)
    first_hour = -(-first_minute // 60)  # the first hour that starts at or after `since`
    sql = (
        f"(SELECT {_WINDOW_COLUMNS} FROM {HOUR.name} WHERE hour >= ? AND {PER_METHOD}"
        f" UNION ALL SELECT {_WINDOW_COLUMNS} FROM {MINUTE.name}"
        f" WHERE minute >= ? AND minute < ? AND {PER_METHOD}) AS rollups"
    )
    return sql, (first_hour, first_minute, first_hour * 60)


def purge(cur: Cursor, when: datetime) -> None:
    """Rollup rows whose period ends at or before the start of `when`'s minute."""
    minute = since_minute(when)
    cur.execute(f"DELETE FROM {MINUTE.name} WHERE minute < ?", (minute,))
    cur.execute(f"DELETE FROM {HOUR.name} WHERE hour < ?", (minute // 60,))
