"""One JSON value -> the value a upb field stores, for every scalar type, Timestamp and Duration.

The scalar checks raise `FieldError` and the Timestamp and Duration parsers `ValueError`, saying
what is wrong with the value; `json_read` adds where it was.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from datetime import date
from typing import Any, Final

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor

from protoc_gen_restmon.runtime.jsoncodec.options import (
    DURATION_MAX,
    EPOCH_DAY,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
)

__all__ = [
    "Convert",
    "FieldError",
    "UnknownEnumName",
    "map_key_parser",
    "parse_duration",
    "parse_timestamp",
    "scalar_parser",
    "show",
]

Convert = Callable[[Any], Any]  # one JSON scalar -> the value upb stores, or FieldError


class FieldError(Exception):
    """Bad input at a field; `path` grows from the innermost key outwards as it propagates."""

    def __init__(self, problem: str, path: list[str] | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path if path is not None else []


class UnknownEnumName(FieldError):
    """An enum name the schema does not have: skipped under `ignore_unknown_fields`."""


# --- Scalars -----------------------------------------------------------------------------------

_INTEGER: Final = re.compile(r"-?[0-9]+\Z")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/_-]*\Z")
_URL_SAFE: Final = str.maketrans("-_", "+/")
# Doubles from here on round to infinity as float32 (2**128 - 2**103). json_format refuses anything
# over FLT_MAX instead, which includes 3.4028235e+38: its own shortest form of FLT_MAX.
_FLOAT_OVERFLOW: Final = 3.4028235677973366e38
_SPECIAL_FLOATS: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_INT_RANGES: Final = {
    FieldDescriptor.TYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: ("sint32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: ("sfixed32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: ("uint32", 0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: ("fixed32", 0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: ("sint64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: ("sfixed64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: ("uint64", 0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: ("fixed64", 0, 2**64 - 1),
}


def scalar_parser(field: FieldDescriptor) -> Convert:
    kind = field.type
    if kind in _INT_RANGES:
        return _integer_parser(*_INT_RANGES[kind])
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return _parse_double
    if kind == FieldDescriptor.TYPE_FLOAT:
        return _parse_float
    if kind == FieldDescriptor.TYPE_BOOL:
        return _parse_bool
    if kind == FieldDescriptor.TYPE_STRING:
        return _parse_string
    if kind == FieldDescriptor.TYPE_BYTES:
        return _parse_bytes
    assert field.enum_type is not None, field.full_name
    return _enum_parser(field.enum_type)


def map_key_parser(field: FieldDescriptor) -> Convert:
    """Map keys are JSON strings whatever the key type: "12", "true"."""
    if field.type == FieldDescriptor.TYPE_STRING:
        return _parse_string
    if field.type == FieldDescriptor.TYPE_BOOL:
        return _parse_bool_key
    convert = scalar_parser(field)

    def parse_key(key: str) -> Any:
        if not _INTEGER.match(key):
            raise FieldError(f"map key {show(key)} is not an integer")
        return convert(key)

    return parse_key


def _integer_parser(type_name: str, low: int, high: int) -> Convert:
    """A JSON number or string with an integral value: 12, 12.0, "12", "1.2e1"."""

    def parse(value: Any) -> int:
        kind = type(value)
        if kind is int:
            number: int = value
        elif (kind is float and value.is_integer()) or (kind is str and _INTEGER.match(value)):
            number = int(value)
        elif kind is str and _NUMBER.match(value) and float(value).is_integer():
            number = int(float(value))
        else:
            raise FieldError(f"expected {type_name}, got {show(value)}")
        if not low <= number <= high:
            raise FieldError(f"{number} is out of range for {type_name}")
        return number

    return parse


def _parse_double(value: Any) -> float:
    kind = type(value)
    if kind is float:
        if math.isinf(value):
            raise FieldError('number out of range for double (write "Infinity" as a string)')
        return value  # type: ignore[no-any-return]
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise FieldError(f"{value} is out of range for double") from None
    if kind is str:
        special = _SPECIAL_FLOATS.get(value)
        if special is not None:
            return special
        if _NUMBER.match(value):
            number = float(value)
            if not math.isinf(number):
                return number
            raise FieldError(f"{value} is out of range for double")
    raise FieldError(f"expected a number, got {show(value)}")


def _parse_float(value: Any) -> float:
    number = _parse_double(value)
    if not math.isinf(number) and abs(number) >= _FLOAT_OVERFLOW:
        raise FieldError(f"{show(value)} is out of range for float")
    return number


def _parse_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise FieldError(f"expected true or false, got {show(value)}")


def _parse_bool_key(value: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise FieldError(f"map key {show(value)} is not true or false")


def _parse_string(value: Any) -> str:
    if type(value) is str:
        return value
    raise FieldError(f"expected a string, got {show(value)}")


def _parse_bytes(value: Any) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    if type(value) is not str:
        raise FieldError(f"expected a base64 string, got {show(value)}")
    digits = value[:-2].rstrip("=") if value.endswith("==") else value.rstrip("=")
    if not _BASE64.match(digits) or len(digits) % 4 == 1:
        raise FieldError(f"invalid base64 {show(value)}")
    try:
        return base64.b64decode(digits.translate(_URL_SAFE) + "=" * (-len(digits) % 4))
    except binascii.Error:
        raise FieldError(f"invalid base64 {show(value)}") from None


def _enum_parser(enum: EnumDescriptor) -> Convert:
    """By name, or by number (numbers the enum lacks are kept: proto3 enums are open)."""
    numbers = {value.name: value.number for value in enum.values}
    known = set(numbers.values())
    closed = enum.is_closed
    full_name = enum.full_name

    def parse(value: Any) -> int:
        kind = type(value)
        if kind is str:
            number = numbers.get(value)
            if number is not None:
                return number
            if not _INTEGER.match(value):
                raise UnknownEnumName(f"unknown value {show(value)} for enum {full_name}")
            number = int(value)
        elif kind is int:
            number = value
        elif value is None and full_name == "google.protobuf.NullValue":
            return 0
        else:
            raise FieldError(f"expected a {full_name} name or number, got {show(value)}")
        if not -(2**31) <= number < 2**31 or (closed and number not in known):
            raise FieldError(f"{number} is not a value of enum {full_name}")
        return number

    return parse


def show(value: Any) -> str:
    """A JSON value as it appears in an error message, shortened."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    # Lone surrogates (JSON allows "\\ud800") are shown escaped: the message must encode.
    text = json.dumps(value, ensure_ascii=False).encode(errors="backslashreplace").decode()
    return text if len(text) <= 40 else f"{text[:37]}..."


# --- Timestamp and Duration strings ---------------------------------------------------------------

# RFC 3339 `date-time`, upper case, as protojson and grpc-gateway accept it. json_format's own
# FromJsonString goes through strptime (a third of the time of parsing a typical message) and
# also takes non-RFC forms such as "2020-1-1T1:2:3Z".
_TIMESTAMP: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)
_DURATION: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]{1,9}))?s\Z")


def parse_duration(message: Any, value: str) -> None:
    """Fill a Duration from "-1.5s"; ValueError when `value` is not one."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError('not a number of seconds such as "1.5s"')
    sign, whole, fraction = match.groups()
    seconds, nanos = int(whole), int(fraction.ljust(9, "0")) if fraction else 0
    if seconds > DURATION_MAX:
        raise ValueError(f"more than {DURATION_MAX} seconds")
    message.seconds, message.nanos = (-seconds, -nanos) if sign else (seconds, nanos)


def parse_timestamp(message: Any, value: str) -> None:
    """Fill a Timestamp from "2024-01-31T12:00:00.5+01:00"; ValueError when `value` is not one."""
    match = _TIMESTAMP.match(value)
    if match is None:
        raise ValueError("not an RFC 3339 date-time such as 2024-01-31T12:00:00.5Z")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        raise ValueError("time of day out of range")
    seconds = (date(int(year), int(month), int(day)).toordinal() - EPOCH_DAY) * 86400
    seconds += int(hour) * 3600 + int(minute) * 60 + int(second)
    if sign is not None:
        offset = int(off_h) * 3600 + int(off_m) * 60
        seconds += -offset if sign == "+" else offset
    if not TIMESTAMP_MIN <= seconds <= TIMESTAMP_MAX:
        raise ValueError("outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z")
    message.seconds = seconds
    message.nanos = int(fraction.ljust(9, "0")) if fraction else 0
