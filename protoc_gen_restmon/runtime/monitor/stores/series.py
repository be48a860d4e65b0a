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
    found: dict[int, Sequence[Any]] = {}
    for sql, params in _selects(query, starts):
        cur.execute(sql, params)
        found.update((int(row[0]), row[1:]) for row in cur.fetchall())
    return [_bucket(start, found[start]) if start in found else _empty(start) for start in starts]


def _selects(query: SeriesQuery, starts: list[int]) -> list[tuple[str, list[Any]]]:
    """Queries of one row per non-empty bucket: its first minute, then the sums of SUMS, min
    and max. Each groups one table by its own key (its primary key's first column: no sort),
    which SQLite does faster than grouping a UNION."""
    where, filters = _filters(query)
    last = starts[-1]
    if query.step is Step.MINUTE:
        return [
            (
                f"SELECT minute, {_AGGREGATES} FROM {MINUTE.name}"
                f" WHERE minute >= ? AND minute <= ?{where} GROUP BY minute",
                [starts[0], last, *filters],
            )
        ]
    first_hour = -(-starts[0] // 60)
    hours = (
        f"SELECT hour * 60, {_AGGREGATES} FROM {HOUR.name}"
        f" WHERE hour >= ? AND hour <= ?{where} GROUP BY hour",
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
    quantiles = histogram.percentiles(counts, _QUANTILES, low, high) if timed else None
    latency = {
        f"p{q}_ms": round(quantiles[i], 1) if quantiles else None for i, q in enumerate(_QUANTILES)
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


def _codes(sums: Sequence[Any]) -> dict[str, int]:
    """Only the codes that occurred: a year of hour buckets stays small."""
    return {code: int(n) for code, column in CODE_COLUMNS.items() if (n := sums[_AT[column]])}
