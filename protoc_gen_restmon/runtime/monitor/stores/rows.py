"""Conversions between model objects and table rows (times as epoch microseconds)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from protoc_gen_restmon.runtime.monitor.model import (
    AdminToken,
    ApiKey,
    CallRecord,
    CallStatus,
    KeyType,
)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
MICROS_PER_MINUTE = 60_000_000

CALL_COLUMNS = (
    "call_id",
    "request_id",
    "service_name",
    "method_name",
    "status",
    "created_at",
    "duration_ms",
    "grpc_status_code",
    "error_message",
    "client_ip",
    "user_id",
    "username",
    "is_authenticated",
    "api_key_id",
    "api_key_name",
    "transport",
    "http_method",
    "http_path",
    "peer",
    "user_agent",
    "labels",
)

KEY_COLUMNS = (
    "id, name, key_type, key_hash, key_prefix, key_suffix, is_active, user_id, username, "
    "user_email, request_count, last_used_at, expires_at, created_at, created_by"
)

TOKEN_COLUMNS = "id, name, token_hash, is_active, created_at"


def to_micros(when: datetime) -> int:
    """Exact (no float rounding); `when` must be timezone-aware."""
    return (when - EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def optional_micros(when: datetime | None) -> int | None:
    return None if when is None else to_micros(when)


def optional_datetime(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(micros)


def call_params(record: CallRecord) -> tuple[Any, ...]:
    """The values of `CALL_COLUMNS`, in order."""
    return (
        record.call_id,
        record.request_id,
        record.service_name,
        record.method_name,
        record.status.value,
        to_micros(record.created_at),
        record.duration_ms,
        record.grpc_status_code,
        record.error_message,
        record.client_ip,
        record.user_id,
        record.username,
        record.is_authenticated,
        record.api_key_id,
        record.api_key_name,
        record.transport,
        record.http_method,
        record.http_path,
        record.peer,
        record.user_agent,
        json.dumps(dict(record.labels)),
    )


def call_from_row(row: Sequence[Any]) -> CallRecord:
    """The inverse of `call_params`."""
    values = list(row)
    values[4] = CallStatus(values[4])
    values[5] = from_micros(values[5])
    values[12] = bool(values[12])
    values[20] = tuple(json.loads(values[20]).items())
    return CallRecord(*values)


def key_from_row(row: Sequence[Any]) -> ApiKey:
    """A row of `KEY_COLUMNS`."""
    return ApiKey(
        id=row[0],
        name=row[1],
        key_type=KeyType(row[2]),
        key_hash=row[3],
        key_prefix=row[4],
        key_suffix=row[5],
        is_active=bool(row[6]),
        user_id=row[7],
        username=row[8],
        user_email=row[9],
        request_count=row[10],
        last_used_at=optional_datetime(row[11]),
        expires_at=optional_datetime(row[12]),
        created_at=from_micros(row[13]),
        created_by=row[14],
    )


def token_from_row(row: Sequence[Any]) -> AdminToken:
    """A row of `TOKEN_COLUMNS`."""
    return AdminToken(
        id=row[0],
        name=row[1],
        token_hash=row[2],
        is_active=bool(row[3]),
        created_at=from_micros(row[4]),
    )
