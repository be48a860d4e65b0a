"""The admin API's JSON shapes (docs/monitoring-api.md §4): records, keys, UTC times with `Z`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from protoc_gen_restmon.runtime.monitor.model import ApiKey, CallRecord, SeriesQuery

__all__ = ["encode_key", "encode_record", "encode_series", "encode_time"]


def encode_time(when: datetime | None) -> str | None:
    """ISO 8601 in UTC with `Z`: `2025-11-04T05:58:43Z` (microseconds when there are any)."""
    if when is None:
        return None
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def encode_key(key: ApiKey, now: datetime) -> dict[str, Any]:
    """A key as the seed shows it: the secret never, its hash neither, only `masked_key`."""
    return {
        "id": key.id,
        "name": key.name,
        "key_type": key.key_type.value,
        "masked_key": key.masked_key,
        "is_active": key.is_active,
        "is_valid": key.is_valid(now),
        "user_id": key.user_id,
        "username": key.username,
        "user_email": key.user_email,
        "request_count": key.request_count,
        "last_used_at": encode_time(key.last_used_at),
        "expires_at": encode_time(key.expires_at),
        "created_at": encode_time(key.created_at),
        "created_by": key.created_by,
    }


def encode_record(record: CallRecord) -> dict[str, Any]:
    """A call record: the seed's fields (`id` is the call's id, a string), then ours."""
    return {
        "id": record.call_id,
        "request_id": record.request_id,
        "service_name": record.service_name,
        "method_name": record.method_name,
        "status": record.status.value,
        # Microsecond precision: the clock's noise below that is not information.
        "duration_ms": None if record.duration_ms is None else round(record.duration_ms, 3),
        "grpc_status_code": record.grpc_status_code,
        "error_message": record.error_message,
        "created_at": encode_time(record.created_at),
        "client_ip": record.client_ip,
        "user_id": record.user_id,
        "username": record.username,
        "is_authenticated": record.is_authenticated,
        "api_key_id": record.api_key_id,
        "api_key_name": record.api_key_name,
        "transport": record.transport,
        "http_method": record.http_method,
        "http_path": record.http_path,
        "peer": record.peer,
        "user_agent": record.user_agent,
        "labels": dict(record.labels),
    }


def encode_series(query: SeriesQuery, buckets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The time series' answer: the window, the step and every bucket, empty ones included."""
    return {
        "step": query.step.value,
        "step_seconds": query.step.seconds,
        "since": encode_time(buckets[0]["start"]),
        "until": encode_time(query.until),
        "service": query.service,
        "method": query.method,
        "buckets": [{**bucket, "start": encode_time(bucket["start"])} for bucket in buckets],
    }
