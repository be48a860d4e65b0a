"""Fixtures for monitor tests: a fresh, empty store per test on SQLite and on PostgreSQL.

- `store_url`: parametrized ["sqlite", "postgresql"]; a database URL nobody else uses
  (SQLite: a file in tmp_path; PostgreSQL: a database of its own, with nothing in it).
- `postgres_databases` (session): hands out those PostgreSQL databases. CREATE DATABASE
  costs ~0.3-0.7 s here, so a database a test is done with is emptied (its connections
  ended, schema `public` dropped and made again, ~20 ms) and given to the next test.
- `store`: `open_store(store_url)`, migrated, closed after the test.
- `make_call(...)`, `minute_start(when)`: building records for tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from protoc_gen_restmon.runtime.monitor.model import CallRecord, CallStatus, Store
from protoc_gen_restmon.runtime.monitor.stores import open_store
from tests.support.postgres_server import PostgresServer


def _admin(server: PostgresServer) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server.dsn, autocommit=True, connect_timeout=5)


def create_database(server: PostgresServer) -> str:
    """A new empty database; its name."""
    name = f"restmon_test_{uuid.uuid4().hex[:12]}"
    with _admin(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(server: PostgresServer, name: str) -> None:
    with _admin(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_database(server: PostgresServer, name: str) -> None:
    """Back to the state CREATE DATABASE leaves: no connections, an empty `public` schema."""
    with _admin(server) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    with psycopg.connect(server.dsn_for(name), autocommit=True, connect_timeout=5) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


class DatabasePool:
    """Empty databases on one server: `take` one, `give_back` it when done."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.free: list[str] = []

    def take(self) -> str:
        return self.free.pop() if self.free else create_database(self.server)

    def give_back(self, name: str) -> None:
        empty_database(self.server, name)
        self.free.append(name)

    def drop_all(self) -> None:
        while self.free:
            drop_database(self.server, self.free.pop())


@pytest.fixture(scope="session")
def postgres_databases(postgres: PostgresServer) -> Iterator[DatabasePool]:
    pool = DatabasePool(postgres)
    try:
        yield pool
    finally:
        pool.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    pool: DatabasePool = request.getfixturevalue("postgres_databases")
    name = pool.take()
    try:
        yield pool.server.dsn_for(name)
    finally:
        pool.give_back(name)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


def minute_start(when: datetime) -> datetime:
    """`when` rounded down to its minute (the stores' rollup granularity)."""
    return when.replace(second=0, microsecond=0)


def make_call(
    call_id: str,
    status: CallStatus = CallStatus.SUCCESS,
    *,
    created_at: datetime | None = None,
    duration_ms: float | None = 1.0,
    service: str = "bookstore.v1.Bookstore",
    method: str = "GetShelf",
    **fields: Any,
) -> CallRecord:
    """A call record with sensible defaults; pending ones get no duration and no code."""
    pending = status is CallStatus.PENDING
    return CallRecord(
        call_id=call_id,
        request_id=fields.pop("request_id", f"req-{call_id}"),
        service_name=service,
        method_name=method,
        status=status,
        created_at=created_at or datetime.now(timezone.utc),
        duration_ms=None if pending else duration_ms,
        grpc_status_code=fields.pop("grpc_status_code", "" if pending else _CODES[status]),
        **fields,
    )


_CODES = {
    CallStatus.SUCCESS: "OK",
    CallStatus.ERROR: "INTERNAL",
    CallStatus.TIMEOUT: "DEADLINE_EXCEEDED",
    CallStatus.CANCELLED: "CANCELLED",
}
