"""URL text to field values: form-encoded query strings, and one text to one field value.

Shared by path variables and query parameters (docs/http-transcoding.md §3). A value is written
the way the proto3 JSON mapping writes it inside a JSON string, without the quotes, and read by the
same decoder as JSON bodies (`jsoncodec.scalars`, with `text=True`):

    int32 / int64 / uint64 / sint… / fixed…   "-12", "18446744073709551615", "1e3" (range-checked)
    double / float                            "1.5", "-2e-3", "NaN", "Infinity", "-Infinity"
    bool                                      "true", "false"
    enum                                      "GENRE_POETRY" or "6"
    bytes                                     standard or URL-safe base64, padded or not
    google.protobuf.Timestamp                 RFC 3339: "2024-01-01T00:00:00.5+01:00", "…t…z"
    google.protobuf.Duration                  "1.5s"
    google.protobuf.FieldMask                 "title,author.displayName" (proto or camelCase paths)
    google.protobuf.*Value (wrappers)         their inner value

In bytes and in a Timestamp's offset a space is read as the "+" a client left unencoded (neither
format has spaces). Every bad value is a `FieldValueError` (INVALID_ARGUMENT) naming the source and
the field path: `query parameter "page.size": invalid int32 value "x": …`.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from protoc_gen_restmon.runtime.jsoncodec.scalars import (
    Convert,
    FieldError,
    FieldValueError,
    Fill,
    map_key_parser,
    message_value_parser,
    scalar_parser,
    show,
)
from protoc_gen_restmon.runtime.status import Code, RpcError

if TYPE_CHECKING:
    from typing import TypeAlias

    from google._upb import _message as upb

    # Message.DESCRIPTOR is typed as either implementation's descriptor.
    MessageDescriptor: TypeAlias = Descriptor | upb.Descriptor
    Field: TypeAlias = FieldDescriptor | upb.FieldDescriptor

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

PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


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


# --- One text to one value ---


def _text_parser(field: Field) -> Convert:
    """The decoder of `field`'s values (not a message field) from text, built once per field."""
    found = _TEXT_PARSERS.get(field)
    if found is None:
        found = _TEXT_PARSERS[field] = scalar_parser(field, text=True)  # type: ignore[arg-type]
    return found


def _text_fill(descriptor: MessageDescriptor) -> Fill:
    """How a well-known leaf message (Timestamp, Duration, FieldMask, wrapper) reads its text."""
    found = _TEXT_FILLS.get(descriptor)
    if found is None:
        built = message_value_parser(descriptor, text=True)  # type: ignore[arg-type]
        assert built is not None, descriptor.full_name
        found = _TEXT_FILLS[descriptor] = built
    return found


_TEXT_PARSERS: dict[object, Convert] = {}
_TEXT_FILLS: dict[object, Fill] = {}


def decode_scalar(field: Field, text: str, source: str, path: Sequence[str]) -> object:
    """The value of non-message `field` written as `text`; raises FieldValueError."""
    return _decoded(_text_parser(field), text, source, path)


def _decoded(convert: Convert, text: str, source: str, path: Sequence[str]) -> object:
    try:
        return convert(text)
    except FieldError as exc:
        raise FieldValueError(source, path, exc.problem) from exc


def type_name(field: Field) -> str:
    """`int64`, `bookstore.v1.Genre`, `google.protobuf.Timestamp`: for messages."""
    named = field.message_type or field.enum_type
    return named.full_name if named is not None else TYPE_NAMES.get(field.type, str(field.type))


# --- Well-known types given as one value ---


def is_leaf(field: Field) -> bool:
    """Whether `field` takes one text value: a scalar, an enum, or a well-known leaf type."""
    message = field.message_type
    return message is None or message.full_name in WELL_KNOWN_LEAVES


def fill_well_known(message: Message, text: str, source: str, path: Sequence[str]) -> None:
    """Set `message` (a Timestamp, Duration, FieldMask or wrapper) from its text form."""
    message.SetInParent()
    try:
        _text_fill(message.DESCRIPTOR)(message, text)
    except FieldError as exc:
        raise FieldValueError(source, path, exc.problem) from exc
    except ValueError as exc:  # a lone surrogate in a StringValue
        raise FieldValueError(source, path, str(exc)) from exc


# --- Writing one value into a message ---


def set_value(parent: Message, field: Field, text: str, source: str, path: Sequence[str]) -> None:
    """`parent.<field> = text`, converted per the field's type; singular fields only."""
    if field.message_type is not None:
        fill_well_known(getattr(parent, field.name), text, source, path)
        return
    value = decode_scalar(field, text, source, path)
    _assign(source, path, lambda: setattr(parent, field.name, value))


def add_value(parent: Message, field: Field, text: str, source: str, path: Sequence[str]) -> None:
    """Append one converted value to the repeated `field`."""
    container = getattr(parent, field.name)
    if field.message_type is not None:
        fill_well_known(container.add(), text, source, path)
        return
    value = decode_scalar(field, text, source, path)
    _assign(source, path, lambda: container.append(value))


def set_map_entry(
    parent: Message, field: Field, key_text: str, text: str, source: str, path: Sequence[str]
) -> None:
    """`parent.<field>[key] = value`; a key given twice is an error. `path` ends with "[key]"."""
    entry = map_entry(field)
    key_field = entry.fields_by_name["key"]
    key = _decoded(_key_parser(key_field), key_text, source, path)
    container = getattr(parent, field.name)
    if key in container:
        raise FieldValueError(source, path, f"map key {show(key_text)} given twice")
    value_field = entry.fields_by_name["value"]
    if value_field.message_type is not None:
        fill_well_known(container[key], text, source, path)
        return
    value = decode_scalar(value_field, text, source, path)
    _assign(source, path, lambda: container.__setitem__(key, value))


def _key_parser(field: Field) -> Convert:
    found = _KEY_PARSERS.get(field)
    if found is None:
        found = _KEY_PARSERS[field] = map_key_parser(field)  # type: ignore[arg-type]
    return found


_KEY_PARSERS: dict[object, Convert] = {}


def map_entry(field: Field) -> MessageDescriptor:
    entry = field.message_type
    assert entry is not None and entry.GetOptions().map_entry
    return entry


def is_map(field: Field) -> bool:
    entry = field.message_type
    return entry is not None and bool(entry.GetOptions().map_entry)


def _assign(source: str, path: Sequence[str], assign: Callable[[], object]) -> None:
    try:
        assign()
    except (ValueError, TypeError) as exc:  # a lone surrogate in a string, a closed enum …
        raise FieldValueError(source, path, str(exc)) from exc
