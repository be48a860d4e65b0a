"""The one decoder of field values: JSON values of request bodies and the text of URLs.

Every scalar type, the wrappers, Timestamp, Duration and FieldMask are read here, by the proto3
JSON mapping (https://protobuf.dev/programming-guides/json/), for both sources: `jsoncodec.read`
passes JSON values (`json.loads` output), `transcode.values` passes the text of a path variable or
query parameter, which is written the way the mapping writes the value inside a JSON string. The
two differ only where the mapping makes them differ, and that is the `text` parameter:

- a JSON bool is the literal `true`; as text it is "true" (as in a JSON map key);
- a JSON number is refused where the mapping wants a string (Timestamp, bytes) and accepted where
  it allows either (integers, floats); text is always the string form;
- form decoding turns an unencoded "+" into a space, and neither base64 nor a Timestamp's offset
  has spaces: as text, a space there is read as "+".

What is accepted: what `google.protobuf.json_format` and the mapping both accept, and RFC 3339 as
the mapping cites it (lower-case "t" and "z", which json_format refuses). What json_format lets
through from Python's own number and date syntax is refused: "+1", " 1", "1_000", non-ASCII
digits, "2020-1-1T1:2:3Z", base64 with stray characters or padding.
Choices where the mapping is silent: an integer, and an enum by number, may be written 1e3 or
1.0 (its value must be integral, exactly: JSON Schema's `integer`, which the OpenAPI document
says, is every such number); numbers as text may have leading zeros, "1." and ".5"; a FieldMask
path may be given by proto names as well as by lowerCamelCase JSON names.

A bad value raises `FieldError` (its `path` grows outwards as it propagates); the reader turns it
into the one `FieldValueError`, an RpcError(INVALID_ARGUMENT) naming where the value came from and
its field path the same way for every source: `query parameter "page.size": …`,
`body field "book.pageCount": …`.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Final

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from protoc_gen_restmon.runtime.jsoncodec.options import (
    DURATION_MAX,
    EPOCH_DAY,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    WRAPPERS_FILE,
)
from protoc_gen_restmon.runtime.status import Code, RpcError

__all__ = [
    "Convert",
    "FieldError",
    "FieldValueError",
    "Fill",
    "UnknownEnumName",
    "json_path",
    "map_key_parser",
    "message_value_parser",
    "scalar_parser",
    "show",
    "string_form_parser",
]

Convert = Callable[[Any], Any]  # one JSON value or text -> the value upb stores, or FieldError
Fill = Callable[[Any, Any], None]  # fill(message, value): a well-known message from its value


class FieldError(Exception):
    """Bad input at a field; `path` grows from the innermost key outwards as it propagates."""

    def __init__(self, problem: str, path: list[str] | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path if path is not None else []


class UnknownEnumName(FieldError):
    """An enum name the schema does not have: skipped under `ignore_unknown_fields`."""


class FieldValueError(RpcError):
    """INVALID_ARGUMENT for a bad value: where it came from, its field path and what is wrong.

    `source` is "query parameter", "path variable", "body field" or "field" (JSON outside the
    gateway); `path` leads from the outermost key inwards, ("reviews", "[1]", "mood") for
    reviews[1].mood, as the client wrote the names. The message is
    `<source> "reviews[1].mood": <problem>`, or only the problem for an empty path (the value
    is the whole document: "expected an object (bookstore.v1.Book), got an array").
    """

    def __init__(self, source: str, path: Sequence[str], problem: str) -> None:
        where = json_path(path if len(path) <= 8 else (*path[:3], "…", *path[-3:]))
        message = f'{source} "{where}": {problem}' if where else problem
        super().__init__(Code.INVALID_ARGUMENT, message)
        self.source = source
        self.path = tuple(path)
        self.problem = problem


def json_path(path: Sequence[str]) -> str:
    """("reviews", "[1]", "mood") -> "reviews[1].mood": an index or map key takes no dot."""
    where = ""
    for segment in path:
        where += segment if segment.startswith("[") or not where else f".{segment}"
    return where


def show(value: Any) -> str:
    """A JSON value or a text as it appears in an error message, shortened."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str) and len(value) > 64:
        value = value[:61] + "..."
    # Lone surrogates (JSON allows "\\ud800") are shown escaped: the message must encode.
    return json.dumps(value, ensure_ascii=False).encode(errors="backslashreplace").decode()


# --- Scalars -----------------------------------------------------------------------------------

_INTEGER: Final = re.compile(r"-?[0-9]+\Z")
# A number as text, leniently (as json_format reads it): leading zeros, "1." and ".5".
_DECIMAL: Final = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*\Z")
# Doubles from here on round to infinity as float32 (2**128 - 2**103). json_format refuses anything
# over FLT_MAX instead, which includes 3.4028235e+38: its own shortest form of FLT_MAX.
_FLOAT_OVERFLOW: Final = 3.4028235677973366e38
_SPECIAL_FLOATS: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_EXPECTED_NUMBER: Final = 'expected a decimal number, "NaN", "Infinity" or "-Infinity"'
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
_TOO_BIG: Final = 10**31  # stands for any integer text too long to convert: out of every range


def scalar_parser(field: FieldDescriptor, *, text: bool = False, noun: str = "value") -> Convert:
    """The converter of one non-message field's values; `text` for URL text (see above).

    `noun` names what is converted in messages: "invalid int64 value "x"", "… map key "x"".
    """
    kind = field.type
    if kind in _INT_RANGES:
        return _integer_parser(*_INT_RANGES[kind], noun)
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return _double_parser(f"double {noun}")
    if kind == FieldDescriptor.TYPE_FLOAT:
        return _float_parser(f"float {noun}")
    if kind == FieldDescriptor.TYPE_BOOL:
        return _text_bool_parser(noun) if text else _parse_bool
    if kind == FieldDescriptor.TYPE_STRING:
        return _parse_string
    if kind == FieldDescriptor.TYPE_BYTES:
        return _bytes_parser(text)
    assert field.enum_type is not None, field.full_name
    return _enum_parser(field.enum_type)


def map_key_parser(field: FieldDescriptor) -> Convert:
    """Map keys are strings whatever the key type, in JSON as in a URL: "12", "true"."""
    return scalar_parser(field, text=True, noun="map key")


def _integer_parser(type_name: str, low: int, high: int, noun: str) -> Convert:
    """A JSON number or a text with an integral value: 12, 12.0, "12", "1.2e1", "007"."""
    name = f"{type_name} {noun}"

    def parse(value: Any) -> int:
        kind = type(value)
        if kind is int:
            number: int | None = value
        elif kind is float:
            number = int(value) if value.is_integer() else None
        elif kind is str:
            # The common case inline: the request path is hot.
            number = int(value) if len(value) <= 30 and _INTEGER.match(value) else integer_of(value)
        else:
            number = None
        if number is None:
            raise FieldError(f"invalid {name} {show(value)}: expected a decimal integer")
        if not low <= number <= high:
            raise FieldError(f"{name} {show(value)} is out of range [{low}, {high}]")
        return number

    return parse


def integer_of(text: str) -> int | None:
    """The integer `text` writes ("12", "-007", "1e3", "1.0"), exactly; None if it writes none."""
    if _INTEGER.match(text):
        digits = text.lstrip("-").lstrip("0")
        return int(text) if len(digits) <= 30 else _TOO_BIG  # no 4300-digit int() parsing
    if not _DECIMAL.match(text):
        return None
    exact = Decimal(text)
    if exact.is_zero():
        return 0
    if exact.adjusted() > 30:  # a huge exponent: out of every range, and never built
        return _TOO_BIG
    if exact.adjusted() < 0 or exact != exact.to_integral_value():
        return None
    return int(exact)


def _double_parser(name: str) -> Convert:
    def parse(value: Any) -> float:
        kind = type(value)
        if kind is float:
            if math.isinf(value):
                raise FieldError(f'{name} out of range (write "Infinity" as a string)')
            return value  # type: ignore[no-any-return]
        if kind is int:
            try:
                return float(value)
            except OverflowError:
                raise FieldError(f"{name} {show(value)} is out of range") from None
        if kind is str:
            special = _SPECIAL_FLOATS.get(value)
            if special is not None:
                return special
            if _DECIMAL.match(value):
                number = float(value)
                if not math.isinf(number):
                    return number
                raise FieldError(f"{name} {show(value)} is out of range")
        raise FieldError(f"invalid {name} {show(value)}: {_EXPECTED_NUMBER}")

    return parse


def _float_parser(name: str) -> Convert:
    parse_double = _double_parser(name)

    def parse(value: Any) -> float:
        number: float = parse_double(value)
        if not math.isinf(number) and abs(number) >= _FLOAT_OVERFLOW:
            raise FieldError(f"{name} {show(value)} is out of range")
        return number

    return parse


def _parse_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise FieldError(f"invalid bool value {show(value)}: expected true or false")


def _text_bool_parser(noun: str) -> Convert:
    def parse(value: str) -> bool:
        if value in ("true", "false"):
            return value == "true"
        raise FieldError(f'invalid bool {noun} {show(value)}: expected "true" or "false"')

    return parse


def _parse_string(value: Any) -> str:
    if type(value) is str:
        return value
    raise FieldError(f"expected a string, got {show(value)}")


def _bytes_parser(text: bool) -> Convert:
    """Standard or URL-safe base64, padded or not (RFC 4648 §4 and §5); padding, if any, right.

    As text, a space is an unencoded "+". (`str.replace` where needed: `translate` costs a µs.)
    """

    def parse(value: Any) -> bytes:
        if type(value) is str:
            digits = value.replace(" ", "+") if text and " " in value else value
            if "-" in digits or "_" in digits:
                digits = digits.replace("-", "+").replace("_", "/")
            stripped = digits.rstrip("=")
            padding = len(digits) - len(stripped)
            bad_padding = padding > 2 or (padding and len(digits) % 4) or len(stripped) % 4 == 1
            if _BASE64.match(stripped) and not bad_padding:
                try:  # the alphabet is checked: a2b_base64 directly (b64decode's validate is slow)
                    return binascii.a2b_base64(stripped + "=" * (-len(stripped) % 4))
                except binascii.Error:
                    pass
        raise FieldError(f"invalid bytes value {show(value)}: expected base64")

    return parse


def _enum_parser(enum: EnumDescriptor) -> Convert:
    """By name, or by number (numbers the enum lacks are kept: proto3 enums are open)."""
    numbers = {value.name: value.number for value in enum.values}
    known = set(numbers.values())
    closed = enum.is_closed
    full_name = enum.full_name
    int32 = _integer_parser("int32", -(2**31), 2**31 - 1, "value")

    def parse(value: Any) -> int:
        kind = type(value)
        if kind is str:
            named = numbers.get(value)
            if named is not None:
                return named
            if integer_of(value) is None:
                raise UnknownEnumName(f"{show(value)} is not a value of enum {full_name}")
        elif value is None and full_name == "google.protobuf.NullValue":
            return 0
        elif kind is not int and not (kind is float and value.is_integer()):
            raise FieldError(f"expected a {full_name} name or number, got {show(value)}")
        number: int = int32(value)
        if closed and number not in known:
            raise FieldError(f"{number} is not a value of closed enum {full_name}")
        return number

    return parse


# --- Well-known types written as one value -------------------------------------------------------


def message_value_parser(descriptor: Descriptor, *, text: bool = False) -> Fill | None:
    """How to fill a Timestamp, Duration, FieldMask or wrapper from its one value; None for others.

    The fill raises FieldError; it does not mark the message present (the caller does). The JSON
    reader builds the same from `string_form_parser` and `scalar_parser` with one call less.
    """
    if descriptor.file.name == WRAPPERS_FILE:
        return _wrapper_fill(scalar_parser(descriptor.fields_by_name["value"], text=text))
    parse = string_form_parser(descriptor.full_name)
    if parse is None:
        return None
    type_name = descriptor.name
    spaced = text and type_name == "Timestamp"

    def fill(message: Any, value: Any) -> None:
        if type(value) is not str:
            raise FieldError(f"expected a {type_name} string, got {show(value)}")
        parse(message, _SPACED_OFFSET.sub("+", value) if spaced else value)

    return fill


def string_form_parser(full_name: str) -> Callable[[Any, str], None] | None:
    """parse(message, text) of a Timestamp, Duration or FieldMask (FieldError); None for others."""
    return _STRING_FORMS.get(full_name)


def _wrapper_fill(convert: Convert) -> Fill:
    def fill(message: Any, value: Any) -> None:
        try:
            message.value = convert(value)
        except ValueError as err:  # upb refuses what the checks let through (lone surrogates)
            raise FieldError(f"invalid value {show(value)}: {err}") from None

    return fill


# RFC 3339 `date-time` (§5.6; "T" and "Z" may be lower case, §5.6 NOTE). json_format's own
# FromJsonString goes through strptime (a third of the time of parsing a typical message) and
# also takes non-RFC forms such as "2020-1-1T1:2:3Z", but not "t" or "z".
_TIMESTAMP: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))\Z"
)
# An unencoded "+" of an offset that form decoding turned into a space: "…00:00 01:00".
_SPACED_OFFSET: Final = re.compile(r"(?<=[0-9]) (?=[0-9]{2}:[0-9]{2}\Z)")
_DURATION: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]{1,9}))?s\Z")
_MASK_SEGMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_UPPER: Final = re.compile("([A-Z])")


def parse_timestamp(message: Any, value: str) -> None:
    """Fill a Timestamp from "2024-01-31T12:00:00.5+01:00"."""
    match = _TIMESTAMP.match(value)
    if match is None:
        raise FieldError(
            f"invalid Timestamp {show(value)}: expected RFC 3339, e.g. 2024-01-31T12:00:00Z"
        )
    groups = match.groups()
    year, month, day, hour, minute, second = map(int, groups[:6])  # each digit string once
    fraction, sign, off_h, off_m = groups[6:]
    if hour > 23 or minute > 59 or second > 59:
        raise FieldError(f"invalid Timestamp {show(value)}: time of day out of range")
    try:
        days = date(year, month, day).toordinal() - EPOCH_DAY
    except ValueError as err:  # "day is out of range for month", "year 0 is out of range"
        raise FieldError(f"invalid Timestamp {show(value)}: {err}") from None
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    if sign is not None:
        if int(off_h) > 23 or int(off_m) > 59:
            raise FieldError(f"invalid Timestamp {show(value)}: offset out of range")
        offset = int(off_h) * 3600 + int(off_m) * 60
        seconds += -offset if sign == "+" else offset
    if not TIMESTAMP_MIN <= seconds <= TIMESTAMP_MAX:
        raise FieldError(
            f"invalid Timestamp {show(value)}: outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z"
        )
    message.seconds = seconds
    message.nanos = int(fraction.ljust(9, "0")) if fraction else 0


def parse_duration(message: Any, value: str) -> None:
    """Fill a Duration from "-1.5s"."""
    match = _DURATION.match(value)
    if match is None:
        raise FieldError(f'invalid Duration {show(value)}: expected seconds, e.g. "1.5s"')
    sign, whole, fraction = match.groups()
    seconds, nanos = int(whole), int(fraction.ljust(9, "0")) if fraction else 0
    if seconds > DURATION_MAX:
        raise FieldError(f"invalid Duration {show(value)}: more than {DURATION_MAX} seconds")
    message.seconds, message.nanos = (-seconds, -nanos) if sign else (seconds, nanos)


def parse_field_mask(message: Any, value: str) -> None:
    """`a.b,fooBar` -> paths ["a.b", "foo_bar"]; proto names pass unchanged."""
    if value:
        message.paths.extend(_mask_path(path) for path in value.split(","))


def _mask_path(path: str) -> str:
    segments = path.split(".")
    if not all(_MASK_SEGMENT.match(segment) for segment in segments):
        raise FieldError(f"invalid FieldMask path {show(path)}")
    return ".".join(_UPPER.sub(r"_\1", segment).lower() for segment in segments)


_STRING_FORMS: Final[dict[str, Callable[[Any, str], None]]] = {
    "google.protobuf.Timestamp": parse_timestamp,
    "google.protobuf.Duration": parse_duration,
    "google.protobuf.FieldMask": parse_field_mask,
}
