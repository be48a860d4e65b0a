"""The call log in SQL: upserting batches (with their rollups and key uses) and the queries.

A call is written `pending` when it starts and final when it ends. A batch looks up the
call_ids it carries (locking those rows on PostgreSQL), inserts the new ones, turns stored
`pending` rows into their final state, and ignores anything else (a late `pending`, a second
final). The rollups (`rollups.py`) of each call's minute and hour are changed by exactly
what happened to its row, so they always equal an aggregate over the rows. A call_id is
written by one writer (the process that handled the call); two processes inserting the same
new call_id at once would count it twice in the rollups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from protoc_gen_restmon.runtime.monitor.model import (
    CallRecord,
    CallStatus,
    KeyUse,
    Page,
    RequestQuery,
    fold_key_uses,
    merge_calls,
)
from protoc_gen_restmon.runtime.monitor.stores import histogram, rollups
from protoc_gen_restmon.runtime.monitor.stores.connections import Cursor, Dialect
from protoc_gen_restmon.runtime.monitor.stores.rows import (
    CALL_COLUMNS,
    MICROS_PER_MINUTE,
    call_from_row,
    call_params,
    to_micros,
)

_LOOKUP_CHUNK = 500
_PENDING = CallStatus.PENDING.value
_INSERT_CALL = (
    f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' * len(CALL_COLUMNS))})"
    " ON CONFLICT (call_id) DO NOTHING"
)
# Every column but call_id (the key) and created_at (the pending row's start time stays).
_FINAL_COLUMNS = [c for c in CALL_COLUMNS if c not in ("call_id", "created_at")]
_FINISH_CALL = (
    f"UPDATE calls SET {', '.join(f'{c} = ?' for c in _FINAL_COLUMNS)}"
    f" WHERE call_id = ? AND status = '{_PENDING}'"
)
_ADD_KEY_USE = (
    "UPDATE api_keys SET request_count = request_count + ?, last_used_at = CASE"
    " WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END WHERE id = ?"
)


def write_batch(
    cur: Cursor, dialect: Dialect, records: Sequence[CallRecord], key_uses: Sequence[KeyUse]
) -> None:
    """Everything in the caller's transaction; see the module docstring."""
    calls = merge_calls(records)
    stored = _stored_calls(cur, dialect, [r.call_id for r in calls])
    inserts = [r for r in calls if r.call_id not in stored]
    finishes = [
        r
        for r in calls
        if r.status is not CallStatus.PENDING and stored.get(r.call_id, (None,))[0] == _PENDING
    ]
    if inserts:
        cur.executemany(_INSERT_CALL, [call_params(r) for r in inserts])
    if finishes:
        cur.executemany(_FINISH_CALL, [_finish_params(r) for r in finishes])
    changes = rollups.Changes()
    for record in inserts:
        changes.add(record, to_micros(record.created_at) // MICROS_PER_MINUTE, new=True)
    for record in finishes:
        changes.add(record, stored[record.call_id][1] // MICROS_PER_MINUTE, new=False)
    rollups.write(cur, dialect, changes)
    # By key id, as the rollups are sorted: a lock order every writer process shares.
    uses = sorted(fold_key_uses(key_uses), key=lambda use: use.api_key_id)
    if uses:
        cur.executemany(_ADD_KEY_USE, [_key_use_params(u) for u in uses])


def _stored_calls(cur: Cursor, dialect: Dialect, call_ids: list[str]) -> dict[str, tuple[str, int]]:
    """call_id -> (status, created_at) of the rows already stored."""
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(call_ids), _LOOKUP_CHUNK):
        chunk = call_ids[start : start + _LOOKUP_CHUNK]
        cur.execute(
            f"SELECT call_id, status, created_at FROM calls"
            f" WHERE call_id IN ({', '.join('?' * len(chunk))}){dialect.lock_rows}",
            chunk,
        )
        found.update((row[0], (row[1], row[2])) for row in cur.fetchall())
    return found


def _finish_params(record: CallRecord) -> tuple[Any, ...]:
    values = dict(zip(CALL_COLUMNS, call_params(record), strict=True))
    return (*(values[c] for c in _FINAL_COLUMNS), record.call_id)


def _key_use_params(use: KeyUse) -> tuple[Any, ...]:
    used_at = to_micros(use.used_at)
    return (use.count, used_at, used_at, use.api_key_id)


def requests(cur: Cursor, query: RequestQuery) -> Page:
    """Newest first; `count` is the number of all matching calls."""
    where, params = _request_filter(query)
    cur.execute(f"SELECT count(*) FROM calls{where}", params)
    count = int(cur.fetchone()[0])
    cur.execute(
        f"SELECT {', '.join(CALL_COLUMNS)} FROM calls{where}"
        " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        [*params, query.limit, query.offset],
    )
    return Page([call_from_row(row) for row in cur.fetchall()], count)


def _request_filter(query: RequestQuery) -> tuple[str, list[Any]]:
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("service_name", query.service),
        ("method_name", query.method),
        ("status", query.status.value if query.status else None),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    return (f" WHERE {' AND '.join(conditions)}" if conditions else ""), params


_COUNTS = "sum(total), sum(finished), sum(successful), sum(timed), sum(duration_sum)"


def overview(cur: Cursor, since: datetime, now: datetime) -> dict[str, Any]:
    window, params = rollups.window(since)
    cur.execute(f"SELECT {_COUNTS}, count(DISTINCT service_name) FROM {window}", params)
    row = cur.fetchone()
    cur.execute(
        "SELECT count(*) FROM api_keys WHERE is_active AND (expires_at IS NULL OR expires_at > ?)",
        (to_micros(now),),
    )
    return {
        **_counts(row[:5]),
        "total_services": int(row[5]),
        "active_api_keys": int(cur.fetchone()[0]),
    }


def services(cur: Cursor, since: datetime) -> list[Mapping[str, Any]]:
    window, params = rollups.window(since)
    cur.execute(
        f"SELECT service_name, {_COUNTS}, count(DISTINCT method_name) FROM {window}"
        " GROUP BY service_name ORDER BY service_name",
        params,
    )
    return [
        {"service_name": row[0], **_counts(row[1:6]), "methods_count": int(row[6])}
        for row in cur.fetchall()
    ]


def methods(cur: Cursor, since: datetime, service: str | None) -> list[Mapping[str, Any]]:
    buckets = ", ".join(f"sum({c})" for c in histogram.COLUMNS)
    window, params = rollups.window(since)
    condition = " WHERE service_name = ?" if service is not None else ""
    cur.execute(
        f"SELECT service_name, method_name, {_COUNTS}, min(duration_min), max(duration_max),"
        f" {buckets} FROM {window}{condition}"
        " GROUP BY service_name, method_name ORDER BY service_name, method_name",
        (*params, *([service] if service is not None else [])),
    )
    return [_method(row) for row in cur.fetchall()]


def _method(row: Sequence[Any]) -> dict[str, Any]:
    low, high = float(row[7] or 0.0), float(row[8] or 0.0)
    counts = [int(c) for c in row[9:]]
    return {
        "service_name": row[0],
        "method_name": row[1],
        **_counts(row[2:7]),
        "min_duration_ms": round(low, 1),
        "max_duration_ms": round(high, 1),
        **{f"p{q}_ms": round(histogram.percentile(counts, q, low, high), 1) for q in (50, 95, 99)},
    }


def _counts(row: Sequence[Any]) -> dict[str, Any]:
    """The shared numbers from (total, finished, successful, timed, duration_sum) sums,
    which are NULL (None) over no rows. The one success-rate formula lives here."""
    total, finished, successful, timed = (int(v or 0) for v in row[:4])
    duration_sum = float(row[4] or 0.0)
    return {
        "total_requests": total,
        "successful_requests": successful,
        "failed_requests": finished - successful,
        "success_rate": round(successful / finished * 100, 1) if finished else 0.0,
        "avg_duration_ms": round(duration_sum / timed, 1) if timed else 0.0,
    }


def purge_chunk_sql(chunk: int) -> str:
    return (
        "DELETE FROM calls WHERE id IN"
        f" (SELECT id FROM calls WHERE created_at < ? ORDER BY created_at LIMIT {chunk})"
    )
