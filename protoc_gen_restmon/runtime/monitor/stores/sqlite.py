"""SQLite connections: one database file in WAL mode, one connection per thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from protoc_gen_restmon.runtime.monitor.model import StoreError
from protoc_gen_restmon.runtime.monitor.stores.connections import Cursor, Dialect

T = TypeVar("T")

SQLITE = Dialect(
    name="sqlite",
    id_column="INTEGER PRIMARY KEY AUTOINCREMENT",
    bool_type="INTEGER",
    least="min",
    greatest="max",
    lock_rows="",  # BEGIN IMMEDIATE already holds the database's write lock
    migration_lock="",  # and serialises migrators too
)

BUSY_TIMEOUT_MS = 5_000


class SqliteConnections:
    """Each thread gets its own connection (WAL lets readers run beside the writer); writes
    take the write lock up front (BEGIN IMMEDIATE), so a batch never fails half-way on a
    lock upgrade. A locked database is waited for up to `busy_timeout_ms`."""

    dialect = SQLITE

    def __init__(self, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self.url}: the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_ms / 1000,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # close() runs on another thread
            )
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable up to the last checkpoint
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def run(self, work: Callable[[Cursor], T], *, write: bool) -> T:
        try:
            conn = self._connection()
        except sqlite3.Error as error:
            raise StoreError(f"{self.url}: {error}") from error
        try:
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            result = work(cur)
            cur.execute("COMMIT")
            return result
        except BaseException as error:
            if conn.in_transaction:
                conn.rollback()
            if isinstance(error, sqlite3.Error):
                raise StoreError(f"{self.url}: {error}") from error
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._all = self._all, []
        for conn in connections:
            conn.close()
