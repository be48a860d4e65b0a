"""The schema, as an ordered list of migrations shared by SQLite and PostgreSQL.

Times are stored as integer microseconds since the Unix epoch (UTC) in both databases, so the
same SQL compares, orders and buckets them. `call_rollups_minute` and `call_rollups_hour`
(`rollups.py`) hold the statistics the overview, services and methods queries read.

Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

from protoc_gen_restmon.runtime.monitor.stores.connections import Cursor, Dialect
from protoc_gen_restmon.runtime.monitor.stores.histogram import COLUMNS
from protoc_gen_restmon.runtime.monitor.stores.rollups import (
    ANY,
    CODE_COLUMNS,
    EXTREMES,
    PER_METHOD,
    STATUS_COLUMNS,
    SUMS,
    TABLES,
    Table,
)

_HISTOGRAM = ",\n    ".join(f"{column} BIGINT NOT NULL DEFAULT 0" for column in COLUMNS)


def _totals(table: Table, service: str) -> str:
    """Migration 3: `table`'s per-service (`service` = "service_name") or whole-server
    (`service` = the literal ANY) rows, summed from its per-method rows."""
    columns = ", ".join((table.period, "service_name", "method_name", *SUMS, *EXTREMES))
    sums = ", ".join((*(f"sum({c})" for c in SUMS), "min(duration_min)", "max(duration_max)"))
    group = ", service_name" if service == "service_name" else ""
    return (
        f"INSERT INTO {table.name} ({columns}) SELECT {table.period}, {service}, '{ANY}', {sums}"
        f" FROM {table.name} WHERE {PER_METHOD} GROUP BY {table.period}{group}"
    )


# Each migration is a list of DDL templates: {id} and {bool} are filled in per dialect.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE calls (
    id {id},
    call_id TEXT NOT NULL UNIQUE,
    request_id TEXT NOT NULL,
    service_name TEXT NOT NULL,
    method_name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    duration_ms DOUBLE PRECISION,
    grpc_status_code TEXT NOT NULL,
    error_message TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    user_id BIGINT,
    username TEXT NOT NULL,
    is_authenticated {bool} NOT NULL,
    api_key_id BIGINT,
    api_key_name TEXT NOT NULL,
    transport TEXT NOT NULL,
    http_method TEXT NOT NULL,
    http_path TEXT NOT NULL,
    peer TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    labels TEXT NOT NULL
)""",
        "CREATE INDEX calls_created_at ON calls (created_at)",
        "CREATE INDEX calls_service_method ON calls (service_name, method_name, created_at)",
        "CREATE INDEX calls_status ON calls (status, created_at)",
        *(
            f"""CREATE TABLE {table.name} (
    {table.period} BIGINT NOT NULL,
    service_name TEXT NOT NULL,
    method_name TEXT NOT NULL,
    total BIGINT NOT NULL DEFAULT 0,
    finished BIGINT NOT NULL DEFAULT 0,
    successful BIGINT NOT NULL DEFAULT 0,
    timed BIGINT NOT NULL DEFAULT 0,
    duration_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
    duration_min DOUBLE PRECISION,
    duration_max DOUBLE PRECISION,
    {_HISTOGRAM},
    PRIMARY KEY ({table.period}, service_name, method_name)
)"""
            for table in TABLES
        ),
        """CREATE TABLE api_keys (
    id {id},
    name TEXT NOT NULL,
    key_type TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    key_suffix TEXT NOT NULL,
    is_active {bool} NOT NULL,
    user_id BIGINT,
    username TEXT NOT NULL,
    user_email TEXT NOT NULL,
    request_count BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
)""",
        "CREATE INDEX api_keys_user ON api_keys (user_id)",
        """CREATE TABLE admin_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
)""",
        """CREATE TABLE admin_tokens (
    id {id},
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    is_active {bool} NOT NULL,
    created_at BIGINT NOT NULL
)""",
    ],
    # Per-status and per-code counts in the rollups, for the time series (by_status, by_code).
    [
        f"ALTER TABLE {table.name} ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0"
        for table in TABLES
        for column in (*STATUS_COLUMNS, *CODE_COLUMNS.values())
    ],
    # Per-service and whole-server rollup rows (rollups.ANY), so the time series reads one row
    # per bucket; written by every batch from here on.
    [_totals(table, service) for table in TABLES for service in ("service_name", f"'{ANY}'")],
]

LATEST = len(MIGRATIONS)


def schema_version(cur: Cursor) -> int:
    cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    cur.execute("SELECT max(version) FROM schema_version")
    row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def apply_migrations(cur: Cursor, dialect: Dialect) -> int:
    """Bring the schema up to `LATEST` inside the caller's (write) transaction; returns the
    version found before. Backends serialise concurrent migrators (SQLite: BEGIN IMMEDIATE,
    PostgreSQL: an advisory lock)."""
    if dialect.migration_lock:
        cur.execute(dialect.migration_lock)
    found = schema_version(cur)
    for version in range(found, LATEST):
        for template in MIGRATIONS[version]:
            cur.execute(dialect.ddl(template))
        cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
    return found
