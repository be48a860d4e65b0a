"""What the shared SQL store needs from a database: a dialect and transactions on a cursor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Cursor(Protocol):
    """The DB-API subset the store uses; placeholders are always `?` (backends translate)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few spellings that differ between SQLite and PostgreSQL."""

    name: str
    id_column: str  # an auto-increment integer primary key
    bool_type: str
    least: str  # two-argument minimum: SQLite's scalar min(), PostgreSQL's LEAST()
    greatest: str
    lock_rows: str  # appended to a SELECT whose rows the transaction is about to update
    migration_lock: str  # a statement that serialises concurrent migrators ("" if not needed)

    def ddl(self, template: str) -> str:
        return template.format(id=self.id_column, bool=self.bool_type)


class Connections(Protocol):
    """A connection source. `run` calls `work(cursor)` in one transaction and commits; any
    database failure comes out as `StoreError`. Reads (`write=False`) are retried once on a
    fresh connection when the old one broke (a restarted server); writes are not, because a
    failure during COMMIT leaves it unknown whether the increments landed."""

    url: str
    dialect: Dialect

    def run(self, work: Callable[[Cursor], T], *, write: bool) -> T: ...
    def close(self) -> None: ...
