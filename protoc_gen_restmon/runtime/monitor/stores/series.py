"""Time series from the rollups: one bucket per minute or per hour, empty buckets included.

A window runs from the start of `since`'s minute to the end of `until`'s. Minute buckets read
`call_rollups_minute` only. Hour buckets read whole hours from `call_rollups_hour` and, when the
window starts inside an hour, that hour's remaining minutes from `call_rollups_minute` as a
first, shorter bucket starting at the window's start: so the buckets add up to exactly what
`overview` counts for the same window (rollups.window reads the same periods). `calls` is never
read. The whole server's chart reads its own row per period and a service's chart the
service's (rollups.ANY): one row per bucket, not one per method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from protoc_gen_restmon.runtime.monitor.model import SeriesQuery, Step
from protoc_gen_restmon.runtime.monitor.stores import histogram
from protoc_gen_restmon.runtime.monitor.stores.connections import Cursor
from protoc_gen_restmon.runtime.monitor.stores.rollups import (
    ANY,
    CODE_COLUMNS,
    HOUR,
    MINUTE,
    PER_METHOD,
    SUMS,
    since_minute,
)
from protoc_gen_restmon.runtime.monitor.stores.rows import (
    MICROS_PER_MINUTE,
    from_micros,
    to_micros,
)

_AGGREGATES = ", ".join(
    (
        *(f"sum({c})" if c == "duration_sum" else f"CAST(sum({c}) AS BIGINT)" for c in SUMS),
        "min(duration_min)",
        "max(duration_max)",
    )
)
_COLUMNS = ", ".join((*SUMS, "duration_min", "duration_max"))
_AT = {column: index for index, column in enumerate(SUMS)}
_HISTOGRAM = slice(_AT[histogram.COLUMNS[0]], _AT[histogram.COLUMNS[-1]] + 1)
_TIMEOUTS, _CANCELS, _DURATION = _AT["timeouts"], _AT["cancels"], _AT["duration_sum"]
_CODE_AT = tuple((code, _AT[column]) for code, column in CODE_COLUMNS.items())


def bucket_starts(query: SeriesQuery) -> list[int]:
    """Every bucket's first minute (minutes since the epoch), in order."""
    first = since_minute(query.since)
    last = to_micros(query.until) // MICROS_PER_MINUTE
    if query.step is Step.MINUTE:
        return list(range(first, last + 1))
    first_hour = -(-first // 60)
    partial = [first] if first % 60 else []
    return partial + [hour * 60 for hour in range(first_hour, last // 60 + 1)]


def timeseries(cur: Cursor, query: SeriesQuery) -> list[Mapping[str, Any]]:
    starts = bucket_starts(query)
    found: dict[int, Sequence[Any]] = {}
    for sql, params in _selects(query, starts):
        cur.execute(sql, params)
        found.update((int(row[0]), row[1:]) for row in cur.fetchall())
    return [_bucket(start, found[start]) if start in found else _empty(start) for start in starts]


def _selects(query: SeriesQuery, starts: list[int]) -> list[tuple[str, list[Any]]]:
    """Queries of one row per non-empty bucket: its first minute, then the sums of SUMS, min
    and max. Each reads one table in its key's order (its primary key's first column: no
    sort), which SQLite does faster than a UNION."""
    where, filters = _filters(query)
    # One row per period (the server's, a service's or a method's): its columns are the sums.
    period = _COLUMNS if _one_row_per_period(query) else _AGGREGATES
    group = "" if _one_row_per_period(query) else " GROUP BY {0}"
    last = starts[-1]
    if query.step is Step.MINUTE:
        return [
            (
                f"SELECT minute, {period} FROM {MINUTE.name}"
                f" WHERE minute >= ? AND minute <= ?{where}{group.format('minute')}",
                [starts[0], last, *filters],
            )
        ]
    first_hour = -(-starts[0] // 60)
    hours = (
        f"SELECT hour * 60, {period} FROM {HOUR.name}"
        f" WHERE hour >= ? AND hour <= ?{where}{group.format('hour')}",
        [first_hour, last // 60, *filters],
    )
    if starts[0] == first_hour * 60:
        return [hours]
    # The window's first, partial hour: its minutes, as one bucket keyed by the window's start
    # (an integer of ours, not a parameter: PostgreSQL could not type it).
    partial = (
        f"SELECT {int(starts[0])}, {_AGGREGATES} FROM {MINUTE.name}"
        f" WHERE minute >= ? AND minute < ?{where} HAVING count(*) > 0",
        [starts[0], first_hour * 60, *filters],
    )
    return [hours, partial]


def _one_row_per_period(query: SeriesQuery) -> bool:
    """Whether `_filters` selects one row per period: all but a method of any service."""
    return not query.method or bool(query.service)


def _filters(query: SeriesQuery) -> tuple[str, list[str]]:
    """The rows of the narrowest level answering the query: the whole server's row
    (service_name = method_name = ANY), a service's (method_name = ANY), or its methods'."""
    service, method = query.service or None, query.method or None
    if method is not None:
        where = " AND method_name = ?" + (
            " AND service_name = ?" if service else f" AND {PER_METHOD}"
        )
        return where, [method, *([service] if service else [])]
    return " AND service_name = ? AND method_name = ?", [service or ANY, ANY]


def _bucket(start: int, row: Sequence[Any]) -> dict[str, Any]:
    """A bucket from its row of sums: Python ints and floats, never NULL (sums over at least
    one row of NOT NULL columns, cast to BIGINT: PostgreSQL's would be Decimals). This runs
    once per bucket, so it indexes the row directly."""
    total, finished, successful, timed = row[0], row[1], row[2], row[3]
    timeouts, cancels = row[_TIMEOUTS], row[_CANCELS]
    failed = finished - successful
    if timed:
        low, high = float(row[-2] or 0.0), float(row[-1] or 0.0)
        p50, p95, p99 = histogram.percentiles(row[_HISTOGRAM], _QUANTILES, low, high)
        latency = {
            "avg_ms": round(row[_DURATION] / timed, 1),
            "p50_ms": round(p50, 1),
            "p95_ms": round(p95, 1),
            "p99_ms": round(p99, 1),
        }
    else:
        latency = _NO_LATENCY
    return {
        "start": from_micros(start * MICROS_PER_MINUTE),
        "total": total,
        "successful": successful,
        "failed": failed,
        "by_status": {
            "success": successful,
            # Rows written before the per-status columns existed count all failures as errors.
            "error": failed - timeouts - cancels,
            "timeout": timeouts,
            "cancelled": cancels,
            "pending": total - finished,
        },
        # Only the codes that occurred: a year of hour buckets stays small.
        "by_code": {code: n for code, at in _CODE_AT if (n := row[at])},
        **latency,
    }


_QUANTILES = (50, 95, 99)
_STATUSES = ("success", "error", "timeout", "cancelled", "pending")
_NO_LATENCY = {"avg_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None}


def _empty(start: int) -> dict[str, Any]:
    """A bucket nothing happened in (most of a long window's: built without the arithmetic)."""
    return {
        "start": from_micros(start * MICROS_PER_MINUTE),
        "total": 0,
        "successful": 0,
        "failed": 0,
        "by_status": dict.fromkeys(_STATUSES, 0),
        "by_code": {},
        **_NO_LATENCY,
    }
