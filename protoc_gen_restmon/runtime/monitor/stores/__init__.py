"""Stores for the monitor: `open_store(url)` picks SQLite or PostgreSQL from the URL."""

from __future__ import annotations

from pathlib import Path

from protoc_gen_restmon.runtime.monitor.model import Store, StoreError
from protoc_gen_restmon.runtime.monitor.stores.sql import SqlStore
from protoc_gen_restmon.runtime.monitor.stores.sqlite import SqliteConnections

__all__ = ["SqlStore", "StoreError", "open_store", "sqlite_path"]

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")


def sqlite_path(url: str) -> Path:
    """`sqlite:///restmon.db` -> `restmon.db` (relative to the working directory),
    `sqlite:////var/lib/restmon.db` -> `/var/lib/restmon.db`."""
    path = url[len(_SQLITE) :]
    if not url.startswith(_SQLITE) or not path:
        raise StoreError(f"{url!r}: expected sqlite:///relative/path or sqlite:////absolute/path")
    return Path(path)


def open_store(url: str) -> Store:
    """A store for `url`, connected and migrated to the current schema.

    `sqlite:///relative.db`, `sqlite:////abs/path.db` or a PostgreSQL URL
    (`postgresql://user:password@host:port/dbname?...`). Raises `StoreError` for another
    scheme or when the database cannot be reached.
    """
    store: SqlStore
    if url.startswith("sqlite:"):
        store = SqlStore(SqliteConnections(sqlite_path(url)))
    elif url.startswith(_POSTGRES):
        # psycopg is imported only for PostgreSQL URLs (100 ms; the command line stays quick).
        from protoc_gen_restmon.runtime.monitor.stores.postgres import PostgresConnections

        store = SqlStore(PostgresConnections(url))
    else:
        raise StoreError(f"{url!r}: unknown store, expected sqlite:///… or postgresql://…")
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
