"""Query-string parameters of the admin API, parsed and bounded; a bad value is a 400."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timedelta

from protoc_gen_restmon.runtime.monitor.model import (
    CallStatus,
    KeyType,
    RequestQuery,
    SeriesQuery,
    Step,
)
from protoc_gen_restmon.runtime.status import Code, RpcError

__all__ = [
    "Params",
    "parse_query",
]

HOURS_DEFAULT, HOURS_MAX = 24, 8760
LIMIT_DEFAULT, LIMIT_MAX = 100, 1000
# Time series: minute buckets by default up to 6 hours (361 points), on request up to 48 hours
# (2,881); beyond that, hour buckets only.
MINUTE_STEP_DEFAULT_HOURS, MINUTE_STEP_MAX_HOURS = 6, 48
_INTEGER = re.compile(r"-?[0-9]+")
_DIGITS_MAX = 30  # longer numbers are out of every range, and not worth converting
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def bad(message: str) -> RpcError:
    return RpcError(Code.INVALID_ARGUMENT, message)


class Params:
    """The query string of one request: the last value of each parameter; empty means absent
    (`?status=` is no filter, as the seed's clients send it)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    def text(self, name: str) -> str | None:
        return self.values.get(name) or None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.optional_integer(name, low, high)
        return default if value is None else value

    def optional_integer(self, name: str, low: int, high: int) -> int | None:
        raw = self.text(name)
        if raw is None:
            return None
        # Plain ASCII digits only: int() would also take " 5", "1_000" and other scripts' digits.
        if not _INTEGER.fullmatch(raw):
            raise bad(f"{name}: expected an integer, got {raw!r}")
        if len(raw) > _DIGITS_MAX or not low <= int(raw) <= high:
            raise bad(f"{name}: {raw} is out of range [{low}, {high}]")
        return int(raw)

    def boolean(self, name: str) -> bool | None:
        raw = self.text(name)
        if raw is None:
            return None
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise bad(f"{name}: expected true or false, got {raw!r}")

    def key_type(self) -> KeyType | None:
        raw = self.text("key_type")
        if raw is None:
            return None
        try:
            return KeyType(raw)
        except ValueError:
            raise bad(f"key_type: {raw!r} is not one of {_choices(KeyType)}") from None

    def status(self) -> CallStatus | None:
        raw = self.text("status")
        if raw is None:
            return None
        try:
            return CallStatus(raw)
        except ValueError:
            raise bad(f"status: {raw!r} is not one of {_choices(CallStatus)}") from None

    def since(self, now: datetime) -> datetime:
        """`now` minus `hours` (default 24, 1..8760)."""
        hours = self.integer("hours", HOURS_DEFAULT, 1, HOURS_MAX)
        return now - timedelta(hours=hours)

    def series_query(self, now: datetime) -> SeriesQuery:
        """`hours`, `step` (minute | hour; default: from the window), `service`, `method`."""
        hours = self.integer("hours", HOURS_DEFAULT, 1, HOURS_MAX)
        step = self.step(hours)
        return SeriesQuery(
            since=now - timedelta(hours=hours),
            until=now,
            step=step,
            service=self.text("service"),
            method=self.text("method"),
        )

    def step(self, hours: int) -> Step:
        raw = self.text("step")
        if raw is None:
            return Step.MINUTE if hours <= MINUTE_STEP_DEFAULT_HOURS else Step.HOUR
        try:
            step = Step(raw)
        except ValueError:
            raise bad(f"step: {raw!r} is not one of {_choices(Step)}") from None
        if step is Step.MINUTE and hours > MINUTE_STEP_MAX_HOURS:
            raise bad(
                f"step: minute buckets serve windows up to {MINUTE_STEP_MAX_HOURS} hours,"
                f" not {hours}; use step=hour"
            )
        return step

    def user_id(self) -> int | None:
        return self.optional_integer("user_id", -(2**63), 2**63 - 1)

    def request_query(self) -> RequestQuery:
        limit = self.integer("limit", LIMIT_DEFAULT, 1, LIMIT_MAX)
        offset = self.integer("offset", 0, 0, 2**63 - 1)
        return RequestQuery(
            service=self.text("service"),
            method=self.text("method"),
            status=self.status(),
            limit=limit,
            offset=offset,
        )


def parse_query(query_string: bytes) -> Params:
    try:
        pairs = urllib.parse.parse_qsl(
            query_string.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise bad(f"malformed query string: {error}") from None
    return Params(dict(pairs))


def _choices(kind: type[CallStatus] | type[KeyType] | type[Step]) -> str:
    return ", ".join(member.value for member in kind)
