"""The monitor's data: call records, API keys, admin credentials, and the store's interface.

Stores (SQLite, PostgreSQL) implement `Store`; the batch writer, the interceptors, the admin
API and the command line use nothing else. Times are aware UTC datetimes everywhere.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from protoc_gen_restmon.runtime.status import Code


class CallStatus(str, enum.Enum):
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"  # DEADLINE_EXCEEDED
    CANCELLED = "cancelled"  # the client went away, or CANCELLED
    PENDING = "pending"  # still in flight

    @classmethod
    def of(cls, code: Code) -> CallStatus:
        if code == Code.OK:
            return cls.SUCCESS
        if code == Code.DEADLINE_EXCEEDED:
            return cls.TIMEOUT
        if code == Code.CANCELLED:
            return cls.CANCELLED
        return cls.ERROR


class KeyType(str, enum.Enum):
    SERVICE = "service"
    CLI = "cli"
    WEBHOOK = "webhook"
    INTERNAL = "internal"
    DEVELOPMENT = "development"


@dataclass(slots=True)
class CallRecord:
    """One RPC, as stored: `pending` while it runs, then its final status under the same
    `call_id` (the store upserts; the writer merges the two when both are queued).

    Not frozen: records are built per call, and a frozen dataclass costs about three times as
    much to build. Nothing changes a record once built."""

    call_id: str  # unique per call (32 hex digits); the store's upsert key
    request_id: str
    service_name: str
    method_name: str
    status: CallStatus
    created_at: datetime
    duration_ms: float | None = None  # None while pending
    grpc_status_code: str = ""  # Code name: "OK", "NOT_FOUND", … ("" while pending)
    error_message: str = ""
    client_ip: str = ""
    user_id: int | None = None
    username: str = ""
    is_authenticated: bool = False
    api_key_id: int | None = None
    api_key_name: str = ""
    transport: str = "grpc"  # "grpc" | "http"
    http_method: str = ""
    http_path: str = ""
    peer: str = ""
    user_agent: str = ""
    # Set by per-method hooks (e.g. ("tenant", "acme")); stored as a JSON object.
    labels: tuple[tuple[str, str], ...] = ()


class LiveCall(Protocol):
    """A call queued once, when it starts, and turned into its record by the writer thread:
    its final record if it has ended by then, else a `pending` one (the call then queues itself
    again when it ends). Building records off the event loop keeps the per-call cost low."""

    def record(self) -> CallRecord | None:
        """The record to write now; None when the final one is written already. Called by
        the writer thread only."""
        ...


@dataclass(frozen=True, slots=True)
class KeyUse:
    """One accepted API key use: the writer adds these to `request_count` atomically."""

    api_key_id: int
    used_at: datetime
    count: int = 1  # the writer folds many uses of one key into one KeyUse


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    key_type: KeyType
    key_hash: str  # hex SHA-256 of the secret; the secret itself is never stored
    key_prefix: str  # first 4 characters, for `masked_key`
    key_suffix: str  # last 4 characters, for `masked_key`
    is_active: bool
    user_id: int | None
    username: str
    user_email: str
    request_count: int
    last_used_at: datetime | None
    expires_at: datetime | None
    created_at: datetime
    created_by: str

    @property
    def masked_key(self) -> str:
        return f"{self.key_prefix}...{self.key_suffix}"

    def is_valid(self, now: datetime) -> bool:
        return self.is_active and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """What `Store.create_key` is given; the secret is made and hashed by `keys.py`."""

    name: str
    key_type: KeyType
    key_hash: str
    key_prefix: str
    key_suffix: str
    user_id: int | None = None
    username: str = ""
    user_email: str = ""
    expires_at: datetime | None = None
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class AdminToken:
    id: int
    name: str
    token_hash: str
    is_active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RequestQuery:
    service: str | None = None
    method: str | None = None
    status: CallStatus | None = None
    limit: int = 100
    offset: int = 0


class Step(str, enum.Enum):
    """A time series' bucket width: the periods the rollup tables hold."""

    MINUTE = "minute"
    HOUR = "hour"

    @property
    def seconds(self) -> int:
        return 60 if self is Step.MINUTE else 3600


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """Buckets of `step` from `since`'s minute to `until`'s, for one service and/or method
    name (None: all)."""

    since: datetime
    until: datetime
    step: Step
    service: str | None = None
    method: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    results: list[CallRecord]
    count: int  # total matching, not just this page


def merge_calls(records: Iterable[CallRecord]) -> list[CallRecord]:
    """One record per call_id: a final status wins over `pending` whatever the order, and the
    first final wins over a later one (a finished call is never rewritten)."""
    merged: dict[str, CallRecord] = {}
    for record in records:
        seen = merged.get(record.call_id)
        if seen is None or seen.status is CallStatus.PENDING:
            merged[record.call_id] = record
    return list(merged.values())


def fold_key_uses(uses: Iterable[KeyUse]) -> list[KeyUse]:
    """One KeyUse per key: counts added, the latest `used_at` kept."""
    folded: dict[int, KeyUse] = {}
    for use in uses:
        seen = folded.get(use.api_key_id)
        if seen is not None:
            use = KeyUse(use.api_key_id, max(use.used_at, seen.used_at), use.count + seen.count)
        folded[use.api_key_id] = use
    return list(folded.values())


class StoreError(Exception):
    """The store failed (unreachable, locked, full, …); the message says what and where."""


class Store(Protocol):
    """A place for records, keys and admin credentials. Methods are synchronous and
    thread-safe; async callers run them in a thread (the writer has its own)."""

    url: str  # the DSN, password masked

    def migrate(self) -> None: ...
    def close(self) -> None: ...
    def ping(self) -> None: ...

    # Calls. `write_batch` upserts records by call_id and adds key uses, in one transaction.
    def write_batch(self, records: Sequence[CallRecord], key_uses: Sequence[KeyUse]) -> None: ...
    def requests(self, query: RequestQuery) -> Page: ...
    # `now`: what key expiry is judged against (the admin API's clock), default the real time.
    def overview(self, since: datetime, now: datetime | None = None) -> Mapping[str, Any]: ...
    def services(self, since: datetime) -> list[Mapping[str, Any]]: ...
    def methods(self, since: datetime, service: str | None = None) -> list[Mapping[str, Any]]: ...
    def timeseries(self, query: SeriesQuery) -> list[Mapping[str, Any]]: ...
    def purge_before(self, when: datetime) -> int: ...

    # API keys.
    def create_key(self, key: NewApiKey) -> ApiKey: ...
    def key_by_hash(self, key_hash: str) -> ApiKey | None: ...
    def key(self, key_id: int) -> ApiKey | None: ...
    def keys(
        self,
        is_active: bool | None = None,
        key_type: KeyType | None = None,
        user_id: int | None = None,
    ) -> list[ApiKey]: ...
    def revoke_key(self, key_id: int) -> bool: ...
    def expire_key(self, key_id: int, at: datetime) -> bool: ...
    def key_stats(self, now: datetime) -> Mapping[str, Any]: ...

    # Admin credentials: one password hash per user name, and bearer tokens (hashed).
    def set_admin_password(self, username: str, password_hash: str) -> None: ...
    def admin_password_hash(self, username: str) -> str | None: ...
    def create_admin_token(self, name: str, token_hash: str) -> AdminToken: ...
    def admin_token_by_hash(self, token_hash: str) -> AdminToken | None: ...
    def admin_tokens(self) -> list[AdminToken]: ...
    def revoke_admin_token(self, token_id: int) -> bool: ...
