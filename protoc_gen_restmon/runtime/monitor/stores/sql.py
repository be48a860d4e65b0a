"""`SqlStore`: the `Store` protocol over any `Connections` (SQLite or PostgreSQL), one SQL text."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from protoc_gen_restmon.runtime.monitor.model import (
    AdminToken,
    ApiKey,
    CallRecord,
    KeyType,
    KeyUse,
    NewApiKey,
    Page,
    RequestQuery,
    SeriesQuery,
)
from protoc_gen_restmon.runtime.monitor.stores import calls, rollups, series
from protoc_gen_restmon.runtime.monitor.stores.connections import Connections, Cursor
from protoc_gen_restmon.runtime.monitor.stores.rows import (
    KEY_COLUMNS,
    TOKEN_COLUMNS,
    key_from_row,
    optional_micros,
    to_micros,
    token_from_row,
)
from protoc_gen_restmon.runtime.monitor.stores.schema import apply_migrations

T = TypeVar("T")

PURGE_CHUNK = 5_000  # rows per DELETE transaction: keeps each lock short


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SqlStore:
    """Thread-safe: the connection source gives each thread its own connection."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self.url = connections.url

    def migrate(self) -> None:
        self._connections.run(
            lambda cur: apply_migrations(cur, self._connections.dialect), write=True
        )

    def close(self) -> None:
        self._connections.close()

    def ping(self) -> None:
        self._read(lambda cur: cur.execute("SELECT 1"))

    def _read(self, work: Callable[[Cursor], T]) -> T:
        return self._connections.run(work, write=False)

    def _write(self, work: Callable[[Cursor], T]) -> T:
        return self._connections.run(work, write=True)

    # Calls.

    def write_batch(self, records: Sequence[CallRecord], key_uses: Sequence[KeyUse]) -> None:
        if records or key_uses:
            dialect = self._connections.dialect
            self._write(lambda cur: calls.write_batch(cur, dialect, records, key_uses))

    def requests(self, query: RequestQuery) -> Page:
        return self._read(lambda cur: calls.requests(cur, query))

    def overview(self, since: datetime, now: datetime | None = None) -> Mapping[str, Any]:
        at = now or _now()
        return self._read(lambda cur: calls.overview(cur, since, at))

    def services(self, since: datetime) -> list[Mapping[str, Any]]:
        return self._read(lambda cur: calls.services(cur, since))

    def methods(self, since: datetime, service: str | None = None) -> list[Mapping[str, Any]]:
        return self._read(lambda cur: calls.methods(cur, since, service))

    def timeseries(self, query: SeriesQuery) -> list[Mapping[str, Any]]:
        return self._read(lambda cur: series.timeseries(cur, query))

    def purge_before(self, when: datetime) -> int:
        """Deletes in chunks of `PURGE_CHUNK` rows, one transaction each, so that writers
        are never held up for long; returns the number of calls deleted."""
        sql, cutoff = calls.purge_chunk_sql(PURGE_CHUNK), to_micros(when)

        def chunk(cur: Cursor) -> int:
            cur.execute(sql, (cutoff,))
            return int(cur.rowcount)

        deleted = 0
        while (count := self._write(chunk)) > 0:
            deleted += count
        self._write(lambda cur: rollups.purge(cur, when))
        return deleted

    # API keys.

    def create_key(self, key: NewApiKey) -> ApiKey:
        params = (
            key.name,
            key.key_type.value,
            key.key_hash,
            key.key_prefix,
            key.key_suffix,
            True,
            key.user_id,
            key.username,
            key.user_email,
            optional_micros(key.expires_at),
            to_micros(_now()),
            key.created_by,
        )

        def insert(cur: Cursor) -> ApiKey:
            cur.execute(
                "INSERT INTO api_keys (name, key_type, key_hash, key_prefix, key_suffix,"
                " is_active, user_id, username, user_email, expires_at, created_at, created_by)"
                f" VALUES ({', '.join('?' * len(params))}) RETURNING {KEY_COLUMNS}",
                params,
            )
            return key_from_row(cur.fetchone())

        return self._write(insert)

    def _one_key(self, condition: str, value: Any) -> ApiKey | None:
        def select(cur: Cursor) -> ApiKey | None:
            cur.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE {condition} = ?", (value,))
            row = cur.fetchone()
            return None if row is None else key_from_row(row)

        return self._read(select)

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        return self._one_key("key_hash", key_hash)

    def key(self, key_id: int) -> ApiKey | None:
        return self._one_key("id", key_id)

    def keys(
        self,
        is_active: bool | None = None,
        key_type: KeyType | None = None,
        user_id: int | None = None,
    ) -> list[ApiKey]:
        filters = {
            "is_active": is_active,
            "key_type": key_type.value if key_type else None,
            "user_id": user_id,
        }
        used = {column: value for column, value in filters.items() if value is not None}
        where = " AND ".join(f"{column} = ?" for column in used)

        def select(cur: Cursor) -> list[ApiKey]:
            cur.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys{' WHERE ' + where if where else ''}"
                " ORDER BY id",
                list(used.values()),
            )
            return [key_from_row(row) for row in cur.fetchall()]

        return self._read(select)

    def _update(self, sql: str, params: Sequence[Any]) -> bool:
        def update(cur: Cursor) -> bool:
            cur.execute(sql, params)
            return cur.rowcount > 0

        return self._write(update)

    def revoke_key(self, key_id: int) -> bool:
        return self._update("UPDATE api_keys SET is_active = ? WHERE id = ?", (False, key_id))

    def expire_key(self, key_id: int, at: datetime) -> bool:
        return self._update(
            "UPDATE api_keys SET expires_at = ? WHERE id = ?", (to_micros(at), key_id)
        )

    def key_stats(self, now: datetime) -> Mapping[str, Any]:
        return self._read(lambda cur: _key_stats(cur, to_micros(now)))

    # Admin credentials.

    def set_admin_password(self, username: str, password_hash: str) -> None:
        self._write(
            lambda cur: cur.execute(
                "INSERT INTO admin_users (username, password_hash, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash,"
                " updated_at = excluded.updated_at",
                (username, password_hash, to_micros(_now())),
            )
        )

    def admin_password_hash(self, username: str) -> str | None:
        def select(cur: Cursor) -> str | None:
            cur.execute("SELECT password_hash FROM admin_users WHERE username = ?", (username,))
            row = cur.fetchone()
            return None if row is None else str(row[0])

        return self._read(select)

    def create_admin_token(self, name: str, token_hash: str) -> AdminToken:
        def insert(cur: Cursor) -> AdminToken:
            cur.execute(
                "INSERT INTO admin_tokens (name, token_hash, is_active, created_at)"
                f" VALUES (?, ?, ?, ?) RETURNING {TOKEN_COLUMNS}",
                (name, token_hash, True, to_micros(_now())),
            )
            return token_from_row(cur.fetchone())

        return self._write(insert)

    def admin_token_by_hash(self, token_hash: str) -> AdminToken | None:
        def select(cur: Cursor) -> AdminToken | None:
            cur.execute(
                f"SELECT {TOKEN_COLUMNS} FROM admin_tokens WHERE token_hash = ?", (token_hash,)
            )
            row = cur.fetchone()
            return None if row is None else token_from_row(row)

        return self._read(select)

    def admin_tokens(self) -> list[AdminToken]:
        def select(cur: Cursor) -> list[AdminToken]:
            cur.execute(f"SELECT {TOKEN_COLUMNS} FROM admin_tokens ORDER BY id")
            return [token_from_row(row) for row in cur.fetchall()]

        return self._read(select)

    def revoke_admin_token(self, token_id: int) -> bool:
        return self._update("UPDATE admin_tokens SET is_active = ? WHERE id = ?", (False, token_id))


def _key_stats(cur: Cursor, now: int) -> dict[str, Any]:
    cur.execute(
        "SELECT count(*),"
        " sum(CASE WHEN is_active AND (expires_at IS NULL OR expires_at > ?) THEN 1 ELSE 0 END),"
        " sum(CASE WHEN expires_at <= ? THEN 1 ELSE 0 END), sum(request_count) FROM api_keys",
        (now, now),
    )
    total, active, expired, requests = cur.fetchone()
    cur.execute("SELECT key_type, count(*) FROM api_keys GROUP BY key_type")
    by_type = {key_type.value: 0 for key_type in KeyType}
    by_type.update((row[0], int(row[1])) for row in cur.fetchall())
    return {
        "total_keys": int(total),
        "active_keys": int(active or 0),
        "expired_keys": int(expired or 0),
        "total_requests": int(requests or 0),
        "keys_by_type": by_type,
    }
