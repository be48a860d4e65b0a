"""URL text to field values: form-encoded query strings, and one string to one field value.

Shared by path variables and query parameters (docs/http-transcoding.md §3). A value is written
the way the proto3 JSON mapping writes it inside a JSON string, without the quotes:

    int32 / int64 / uint64 / sint… / fixed…   "-12", "18446744073709551615" (decimal, range-checked)
    double / float                            "1.5", "-2e-3", "NaN", "Infinity", "-Infinity"
    bool                                      "true", "false"
    enum                                      "GENRE_POETRY" or "6"
    bytes                                     standard or URL-safe base64, padded or not
    google.protobuf.Timestamp                 RFC 3339: "2024-01-01T00:00:00.5+01:00"
    google.protobuf.Duration                  "1.5s"
    google.protobuf.FieldMask                 "title,author.displayName" (proto or camelCase paths)
    google.protobuf.*Value (wrappers)         their inner value

Choices where the spec is silent: ints are plain decimal (no "+", "_", exponent or hex); bool is
only "true"/"false"; an enum number must be an int32, and a declared value for a closed (proto2)
enum; a double or float that overflows is an error; in bytes and in a Timestamp's offset a space
is read as the "+" a client left unencoded (neither format has spaces). Every bad value is an
`RpcError(INVALID_ARGUMENT, "<where>: <why>")`; `where` names the parameter.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from protoc_gen_restmon.runtime.status import Code, RpcError

if TYPE_CHECKING:
    from typing import TypeAlias

    from google._upb import _message as upb

    # Message.DESCRIPTOR is typed as either implementation's descriptor.
    MessageDescriptor: TypeAlias = Descriptor | upb.Descriptor
    Field: TypeAlias = FieldDescriptor | upb.FieldDescriptor

Scalar = int | float | bool | str | bytes

F = FieldDescriptor

TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"
FIELD_MASK = "google.protobuf.FieldMask"
WRAPPERS = frozenset(
    f"google.protobuf.{name}"
    for name in (
        "DoubleValue",
        "FloatValue",
        "Int64Value",
        "UInt64Value",
        "Int32Value",
        "UInt32Value",
        "BoolValue",
        "StringValue",
        "BytesValue",
    )
)
# Message types a query parameter or path variable may hold as one value.
WELL_KNOWN_LEAVES = frozenset({TIMESTAMP, DURATION, FIELD_MASK, *WRAPPERS})

# Inclusive ranges of the integer types.
INT_RANGES: dict[int, tuple[int, int]] = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}

TYPE_NAMES: dict[int, str] = {
    F.TYPE_DOUBLE: "double",
    F.TYPE_FLOAT: "float",
    F.TYPE_INT64: "int64",
    F.TYPE_UINT64: "uint64",
    F.TYPE_INT32: "int32",
    F.TYPE_FIXED64: "fixed64",
    F.TYPE_FIXED32: "fixed32",
    F.TYPE_BOOL: "bool",
    F.TYPE_STRING: "string",
    F.TYPE_BYTES: "bytes",
    F.TYPE_UINT32: "uint32",
    F.TYPE_ENUM: "enum",
    F.TYPE_SFIXED32: "sfixed32",
    F.TYPE_SFIXED64: "sfixed64",
    F.TYPE_SINT32: "sint32",
    F.TYPE_SINT64: "sint64",
}

INTEGER = re.compile(r"-?[0-9]+")
# A JSON number, leniently: leading zeros and "1." are accepted.
DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
BASE64 = re.compile(r"[A-Za-z0-9+/]*")
# RFC 3339 §5.6 date-time; "T" and "Z" may be lowercase (§5.6 NOTE).
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# An unencoded "+" of an offset that form decoding turned into a space: "…00:00 01:00".
SPACED_OFFSET = re.compile(r"(?<=[0-9]) (?=[0-9]{2}:[0-9]{2}$)")
DURATION_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]{1,9})?s")
MASK_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class BadValueError(Exception):
    """Why one text is not a value of one type; `invalid()` turns it into an RpcError."""


def invalid(where: str, why: str) -> RpcError:
    return RpcError(Code.INVALID_ARGUMENT, f"{where}: {why}")


# --- Form-encoded query strings (WHATWG application/x-www-form-urlencoded, strict) ---


def parse_query(query: str | bytes) -> tuple[tuple[str, str], ...]:
    """`a=1&b=x+y&b=%C3%A9&flag` -> (("a", "1"), ("b", "x y"), ("b", "é"), ("flag", "")).

    `+` is a space and percent escapes are decoded; unlike a browser, a malformed escape or
    bytes that are not UTF-8 are an error (400), not passed through.
    """
    if isinstance(query, str):
        try:
            query = query.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RpcError(Code.INVALID_ARGUMENT, f"query string: {exc.reason}") from exc
    pairs = []
    for piece in query.split(b"&"):
        if piece:
            key, _, value = piece.partition(b"=")
            pairs.append((decode_form(key, piece), decode_form(value, piece)))
    return tuple(pairs)


def decode_form(raw: bytes, piece: bytes) -> str:
    """One form-encoded key or value; `piece` is the whole `key=value` for error messages."""
    if PERCENT.search(raw):
        raise invalid(f"query string {_show(piece)}", "malformed percent escape")
    try:
        return urllib.parse.unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(f"query string {_show(piece)}", "not valid UTF-8") from exc


def _show(piece: bytes) -> str:
    return '"' + piece.decode("utf-8", "backslashreplace") + '"'


# --- One string to one scalar ---


def decode_scalar(field: Field, text: str, where: str) -> Scalar:
    """The value of non-message `field` written as `text`; raises RpcError(INVALID_ARGUMENT)."""
    try:
        return _decode(field, text)
    except BadValueError as exc:
        raise invalid(where, str(exc)) from exc


def _decode(field: Field, text: str) -> Scalar:
    if field.type in INT_RANGES:
        return decode_int(text, field.type)
    decoder = _DECODERS.get(field.type)
    if decoder is not None:
        return decoder(text)
    if field.type == F.TYPE_ENUM:
        return decode_enum(field, text)
    raise BadValueError(f"a field of type {field.type} cannot be given as text")


def decode_int(text: str, field_type: int) -> int:
    name = TYPE_NAMES[field_type]
    if not INTEGER.fullmatch(text):
        raise BadValueError(f"invalid {name} value {_quote(text)}: expected a decimal integer")
    low, high = INT_RANGES[field_type]
    digits = text.lstrip("-").lstrip("0")
    value = int(text) if len(digits) <= 30 else high + 1  # no 4300-digit int() parsing
    if not low <= value <= high:
        raise BadValueError(f"{name} value {_quote(text)} is out of range [{low}, {high}]")
    return value


def decode_double(text: str) -> float:
    return _decode_float(text, "double")


def decode_float(text: str) -> float:
    value = _decode_float(text, "float")
    try:
        struct.pack("<f", value)
    except OverflowError as exc:
        raise BadValueError(f"float value {_quote(text)} is out of range") from exc
    return value


def _decode_float(text: str, name: str) -> float:
    if text in SPECIAL_FLOATS:
        return SPECIAL_FLOATS[text]
    if not DECIMAL.fullmatch(text):
        raise BadValueError(
            f"invalid {name} value {_quote(text)}: expected a decimal number, "
            '"NaN", "Infinity" or "-Infinity"'
        )
    value = float(text)
    if math.isinf(value):
        raise BadValueError(f"{name} value {_quote(text)} is out of range")
    return value


def decode_bool(text: str) -> bool:
    if text in ("true", "false"):
        return text == "true"
    raise BadValueError(f'invalid bool value {_quote(text)}: expected "true" or "false"')


def decode_string(text: str) -> str:
    return text


def decode_bytes(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not (RFC 4648 §4 and §5).

    A space stands for `+`: base64 has no spaces, so one can only be an unencoded `+` that
    form decoding turned into a space.
    """
    body = text.replace(" ", "+").replace("-", "+").replace("_", "/")
    stripped = body.rstrip("=")
    padding = len(body) - len(stripped)
    bad_padding = padding > 2 or (padding and len(body) % 4) or len(stripped) % 4 == 1
    if not BASE64.fullmatch(stripped) or bad_padding:
        raise BadValueError(f"invalid bytes value {_quote(text)}: expected base64")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except binascii.Error as exc:
        raise BadValueError(f"invalid bytes value {_quote(text)}: {exc}") from exc


def decode_enum(field: Field, text: str) -> int:
    """A value name, or a number: any int32 for an open enum, a declared one for a closed enum."""
    enum = field.enum_type
    if enum is None:
        raise BadValueError(f"{field.full_name} is not an enum field")
    named = enum.values_by_name.get(text)
    if named is not None:
        return int(named.number)
    if not INTEGER.fullmatch(text):
        raise BadValueError(f"{_quote(text)} is not a value of enum {enum.full_name}")
    number = decode_int(text, F.TYPE_INT32)
    if enum.is_closed and number not in enum.values_by_number:
        raise BadValueError(f"{number} is not a value of closed enum {enum.full_name}")
    return number


_DECODERS: dict[int, Callable[[str], Scalar]] = {
    F.TYPE_DOUBLE: decode_double,
    F.TYPE_FLOAT: decode_float,
    F.TYPE_BOOL: decode_bool,
    F.TYPE_STRING: decode_string,
    F.TYPE_BYTES: decode_bytes,
}


def type_name(field: Field) -> str:
    """`int64`, `bookstore.v1.Genre`, `google.protobuf.Timestamp`: for messages."""
    named = field.message_type or field.enum_type
    return named.full_name if named is not None else TYPE_NAMES.get(field.type, str(field.type))


def _quote(text: str) -> str:
    shown = text if len(text) <= 64 else text[:61] + "..."
    return '"' + shown.encode("utf-8", "backslashreplace").decode("utf-8") + '"'


# --- Well-known types given as one value ---


def is_leaf(field: Field) -> bool:
    """Whether `field` takes one text value: a scalar, an enum, or a well-known leaf type."""
    message = field.message_type
    return message is None or message.full_name in WELL_KNOWN_LEAVES


def fill_well_known(message: Message, text: str, where: str) -> None:
    """Set `message` (a Timestamp, Duration, FieldMask or wrapper) from its text form."""
    message.SetInParent()
    full_name = message.DESCRIPTOR.full_name
    try:
        if full_name in WRAPPERS:
            inner = message.DESCRIPTOR.fields_by_name["value"]
            message.value = _decode(inner, text)  # type: ignore[attr-defined]
        else:
            _WELL_KNOWN[full_name](message, text)
    except BadValueError as exc:
        raise invalid(where, str(exc)) from exc
    except ValueError as exc:  # a lone surrogate in a StringValue
        raise invalid(where, str(exc)) from exc


def fill_timestamp(message: Message, text: str) -> None:
    rfc3339 = SPACED_OFFSET.sub("+", text)
    if not RFC3339.fullmatch(rfc3339):
        raise BadValueError(
            f"invalid Timestamp {_quote(text)}: expected RFC 3339, e.g. 2024-01-31T12:00:00Z"
        )
    _from_json_string(message, rfc3339.upper(), "Timestamp")


def fill_duration(message: Message, text: str) -> None:
    if not DURATION_TEXT.fullmatch(text):
        raise BadValueError(f'invalid Duration {_quote(text)}: expected seconds, e.g. "1.5s"')
    _from_json_string(message, text, "Duration")


def fill_field_mask(message: Message, text: str) -> None:
    """`a.b,fooBar` -> paths ["a.b", "foo_bar"]; proto names pass unchanged."""
    paths = [decode_mask_path(path) for path in text.split(",")] if text else []
    message.paths.extend(paths)  # type: ignore[attr-defined]


def decode_mask_path(path: str) -> str:
    segments = path.split(".")
    if not all(MASK_SEGMENT.fullmatch(segment) for segment in segments):
        raise BadValueError(f"invalid FieldMask path {_quote(path)}")
    return ".".join(re.sub("([A-Z])", r"_\1", segment).lower() for segment in segments)


def _from_json_string(message: Message, text: str, name: str) -> None:
    try:
        message.FromJsonString(text)  # type: ignore[attr-defined]
    except (ValueError, OverflowError) as exc:
        raise BadValueError(f"invalid {name} {_quote(text)}: {exc}") from exc


_WELL_KNOWN: dict[str, Callable[[Message, str], None]] = {
    TIMESTAMP: fill_timestamp,
    DURATION: fill_duration,
    FIELD_MASK: fill_field_mask,
}


# --- Writing one value into a message ---


def set_value(parent: Message, field: Field, text: str, where: str) -> None:
    """`parent.<field> = text`, converted per the field's type; singular fields only."""
    if field.message_type is not None:
        fill_well_known(getattr(parent, field.name), text, where)
        return
    _assign(where, lambda: setattr(parent, field.name, decode_scalar(field, text, where)))


def add_value(parent: Message, field: Field, text: str, where: str) -> None:
    """Append one converted value to the repeated `field`."""
    container = getattr(parent, field.name)
    if field.message_type is not None:
        fill_well_known(container.add(), text, where)
        return
    _assign(where, lambda: container.append(decode_scalar(field, text, where)))


def set_map_entry(parent: Message, field: Field, key_text: str, text: str, where: str) -> None:
    """`parent.<field>[key] = value`; a key given twice is an error."""
    entry = map_entry(field)
    key = decode_scalar(entry.fields_by_name["key"], key_text, f"{where} (map key)")
    container = getattr(parent, field.name)
    if key in container:
        raise invalid(where, f"map key {_quote(key_text)} given twice")
    value_field = entry.fields_by_name["value"]
    if value_field.message_type is not None:
        fill_well_known(container[key], text, where)
        return
    _assign(where, lambda: container.__setitem__(key, decode_scalar(value_field, text, where)))


def map_entry(field: Field) -> MessageDescriptor:
    entry = field.message_type
    assert entry is not None and entry.GetOptions().map_entry
    return entry


def is_map(field: Field) -> bool:
    entry = field.message_type
    return entry is not None and bool(entry.GetOptions().map_entry)


def _assign(where: str, assign: Callable[[], object]) -> None:
    try:
        assign()
    except (ValueError, TypeError) as exc:  # a lone surrogate in a string, a closed enum …
        raise invalid(where, str(exc)) from exc
