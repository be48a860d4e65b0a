"""Time series from the rollups: one bucket per minute or per hour, empty buckets included.

A window runs from the start of `since`'s minute to the end of `until`'s. Minute buckets read
`call_rollups_minute` only. Hour buckets read whole hours from `call_rollups_hour` and, when the
window starts inside an hour, that hour's remaining minutes from `call_rollups_minute` as a
first, shorter bucket starting at the window's start: so the buckets add up to exactly what
`overview` counts for the same window (rollups.window reads the same rows). `calls` is never
read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from protoc_gen_restmon.runtime.monitor.model import SeriesQuery, Step
from protoc_gen_restmon.runtime.monitor.stores import histogram
from protoc_gen_restmon.runtime.monitor.stores.connections import Cursor
from protoc_gen_restmon.runtime.monitor.stores.rollups import (
    CODE_COLUMNS,
    HOUR,
    MINUTE,
    SUMS,
    since_minute,
)
from protoc_gen_restmon.runtime.monitor.stores.rows import (
    MICROS_PER_MINUTE,
    from_micros,
    to_micros,
)

_AGGREGATES = ", ".join(
    (*(f"sum({column})" for column in SUMS), "min(duration_min)", "max(duration_max)")
)
_COLUMNS = ", ".join((*SUMS, "duration_min", "duration_max"))
_AT = {column: index for index, column in enumerate(SUMS)}
_HISTOGRAM = slice(_AT[histogram.COLUMNS[0]], _AT[histogram.COLUMNS[-1]] + 1)


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
    sql, params = _select(query, starts)
    cur.execute(sql, params)
    found = {int(row[0]): row[1:] for row in cur.fetchall()}
    return [_bucket(start, found[start]) if start in found else _empty(start) for start in starts]


def _select(query: SeriesQuery, starts: list[int]) -> tuple[str, list[Any]]:
    """One row per non-empty bucket: its first minute, then the sums of SUMS, min and max."""
    last = starts[-1] + (0 if query.step is Step.MINUTE else 59)
    where, filters = _filters(query)
    if query.step is Step.MINUTE:
        parts = [f"minute AS bucket FROM {MINUTE.name} WHERE minute >= ? AND minute <= ?"]
        bounds = [(starts[0], last)]
    else:
        # Whole hours keyed by their first minute; the partial first hour keyed by its start
        # (an integer of ours, not a parameter: PostgreSQL could not type it in the UNION).
        first_hour = -(-starts[0] // 60)
        parts = [
            f"hour * 60 AS bucket FROM {HOUR.name} WHERE hour >= ? AND hour <= ?",
            f"{int(starts[0])} AS bucket FROM {MINUTE.name} WHERE minute >= ? AND minute < ?",
        ]
        bounds = [(first_hour, last // 60), (starts[0], first_hour * 60)]
    sql = " UNION ALL ".join(f"SELECT {_COLUMNS}, {part}{where}" for part in parts)
    params = [value for bound in bounds for value in (*bound, *filters)]
    return f"SELECT bucket, {_AGGREGATES} FROM ({sql}) AS rollups GROUP BY bucket", params


def _filters(query: SeriesQuery) -> tuple[str, list[str]]:
    used = [
        (column, value)
        for column, value in (("service_name", query.service), ("method_name", query.method))
        if value is not None
    ]
    return "".join(f" AND {column} = ?" for column, _ in used), [value for _, value in used]


def _bucket(start: int, row: Sequence[Any]) -> dict[str, Any]:
    sums = [v or 0 for v in row[: len(SUMS)]]
    total, finished, successful, timed = (int(sums[_AT[c]]) for c in SUMS[:4])
    timeouts, cancels = int(sums[_AT["timeouts"]]), int(sums[_AT["cancels"]])
    failed = finished - successful
    low, high = float(row[-2] or 0.0), float(row[-1] or 0.0)
    counts = [int(c) for c in sums[_HISTOGRAM]]
    latency = {
        f"p{q}_ms": round(histogram.percentile(counts, q, low, high), 1) if timed else None
        for q in (50, 95, 99)
    }
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
        "by_code": _codes(sums),
        "avg_ms": round(float(sums[_AT["duration_sum"]]) / timed, 1) if timed else None,
        **latency,
    }


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


def _codes(sums: Sequence[Any]) -> dict[str, int]:
    """Only the codes that occurred: a year of hour buckets stays small."""
    return {code: int(n) for code, column in CODE_COLUMNS.items() if (n := sums[_AT[column]])}
