"""Upb messages -> proto3 JSON, byte for byte what `google.protobuf.json_format` writes.

`json_format` walks every descriptor on every call; this module compiles one writer per message
type and option set on first use and keeps it: the same output (the tests compare the bytes), a
fraction of the time. Any, Struct, Value and ListValue are rare and are handed to `json_format`.

    to_json(Book(title="Dune", isbn_13="978"))      # b'{"title":"Dune","isbn":"978",...}'
    field_to_json(ListGenresResponse(genres=[1]), "genres")     # b'["GENRE_FICTION"]'
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Callable
from datetime import date
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.internal.type_checkers import ToShortestFloat
from google.protobuf.message import DecodeError, Message

from protoc_gen_restmon.runtime.jsoncodec.options import (
    DEFAULT_OPTIONS,
    DELEGATED,
    DURATION_MAX,
    EPOCH_DAY,
    STRING_FORMS,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    WRAPPERS_FILE,
    JsonOptions,
)
from protoc_gen_restmon.runtime.jsoncodec.registry import descriptor_of, is_map_field
from protoc_gen_restmon.runtime.status import Code, RpcError

__all__ = ["field_to_json", "to_json", "wire_to_json"]

_Writer = Callable[[Any], Any]  # a value as a upb message holds it -> the value json.dumps writes
_WriterKey = tuple[Descriptor, bool, bool, bool]
_FieldKey = tuple[Descriptor, str, bool, bool, bool]

_WRITERS: dict[_WriterKey, _Writer] = {}
_FIELD_WRITERS: dict[_FieldKey, _Writer] = {}  # message -> the JSON value of one of its fields
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def _one_shot_encoder() -> Callable[[Any], str]:
    """`_ENCODER.encode`, without the encoder it builds on every call: `JSONEncoder.encode`
    makes a new C encoder (`c_make_encoder`) with `_ENCODER`'s settings each time; this one is
    made once. The same C code writes the same bytes; the pure-Python encoder where there is no C
    one."""
    make = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed's json.encoder
    if make is None:
        return _ENCODER.encode
    encode = make(
        None,  # markers: check_circular=False
        _ENCODER.default,
        json.encoder.encode_basestring,  # ensure_ascii=False
        None,  # indent
        _ENCODER.key_separator,
        _ENCODER.item_separator,
        _ENCODER.sort_keys,
        _ENCODER.skipkeys,
        _ENCODER.allow_nan,
    )
    return lambda value: "".join(encode(value, 0))


_ENCODE: Final = _one_shot_encoder()


def to_json(message: Message, options: JsonOptions = DEFAULT_OPTIONS) -> bytes:
    """`message` in proto3 JSON: compact UTF-8, the keys and values `json_format` writes.

    A message that has no JSON form (a Timestamp out of range, an Any of an unknown type, a Value
    holding NaN) is the server's fault: RpcError(INTERNAL).
    """
    try:
        return _ENCODE(_writer(descriptor_of(message), options)(message)).encode()
    except (ValueError, TypeError, json_format.Error) as err:
        raise RpcError(
            Code.INTERNAL, f"cannot write {message.DESCRIPTOR.full_name} as JSON: {err}"
        ) from err


def field_to_json(message: Message, name: str, options: JsonOptions = DEFAULT_OPTIONS) -> bytes:
    """The JSON value of the top-level field `name` (proto name) of `message` (`response_body`).

    The value `to_json(message, options)` writes under the field's key, or `null` when it writes
    no key (a field unset, or at its default without `emit_unpopulated`). A repeated field is an
    array, a map an object, a message an object; errors are those of `to_json`.
    """
    descriptor = descriptor_of(message)
    try:
        return _ENCODE(_field_value_writer(descriptor, name, options)(message)).encode()
    except (ValueError, TypeError, json_format.Error) as err:
        raise RpcError(
            Code.INTERNAL, f"cannot write {descriptor.full_name}.{name} as JSON: {err}"
        ) from err


def wire_to_json(data: bytes, cls: type[Message], options: JsonOptions = DEFAULT_OPTIONS) -> bytes:
    """Wire bytes of a `cls` message (an upstream response) -> proto3 JSON."""
    try:
        message = cls.FromString(data)
    except DecodeError as err:
        raise RpcError(
            Code.INTERNAL, f"invalid {cls.DESCRIPTOR.full_name} in wire format: {err}"
        ) from err
    return to_json(message, options)


def _writer(descriptor: Descriptor, options: JsonOptions) -> _Writer:
    key = (
        descriptor,
        options.emit_unpopulated,
        options.use_proto_names,
        options.enums_as_ints,
    )
    found = _WRITERS.get(key)
    if found is None:
        # A recursive message type refers to itself while its writer is built: a forwarder
        # stands in until the real one exists.
        built: list[_Writer] = []
        _WRITERS[key] = lambda value: built[0](value)
        built.append(_build_writer(descriptor, options))
        found = _WRITERS[key] = built[0]
    return found


def _field_value_writer(descriptor: Descriptor, name: str, options: JsonOptions) -> _Writer:
    key = (
        descriptor,
        name,
        options.emit_unpopulated,
        options.use_proto_names,
        options.enums_as_ints,
    )
    found = _FIELD_WRITERS.get(key)
    if found is None:
        field = descriptor.fields_by_name.get(name)
        if field is None:
            raise RpcError(Code.INTERNAL, f'{descriptor.full_name} has no field "{name}"')
        found = _FIELD_WRITERS[key] = _build_field_value_writer(field, options)
    return found


def _build_field_value_writer(field: FieldDescriptor, options: JsonOptions) -> _Writer:
    """What `_build_message_writer`'s writer puts under the field's key; None (null) for no key."""
    name = field.name
    convert = _field_writer(field, options)
    is_set = _presence_test(field)
    emits_default = options.emit_unpopulated and not field.has_presence
    absent = _default_json(field, options) if emits_default else None

    def write(message: Any) -> Any:
        if not is_set(message):
            return absent
        value = getattr(message, name)
        return value if convert is None else convert(value)

    return write


def _presence_test(field: FieldDescriptor) -> Callable[[Any], bool]:
    """Whether ListFields lists `field`: HasField, or for a field without presence a non-empty
    list or map, or a value whose bytes are not all zero (-0.0 is listed, 0.0 is not)."""
    name = field.name
    if field.has_presence:
        return lambda message: bool(message.HasField(name))
    floats = (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT)
    if not field.is_repeated and field.cpp_type in floats:
        return lambda message: (
            math.copysign(1.0, getattr(message, name)) < 0 or bool(getattr(message, name))
        )
    return lambda message: bool(getattr(message, name))


def _build_writer(descriptor: Descriptor, options: JsonOptions) -> _Writer:
    full_name = descriptor.full_name
    if descriptor.file.name == WRAPPERS_FILE:
        inner = _value_writer(descriptor.fields_by_name["value"], options)
        return (lambda m: m.value) if inner is None else (lambda m: inner(m.value))
    if full_name == "google.protobuf.Timestamp":
        return _write_timestamp
    if full_name == "google.protobuf.Duration":
        return _write_duration
    if full_name in STRING_FORMS:
        return _write_string_form
    if full_name in DELEGATED:
        return lambda m: json_format.MessageToDict(
            m,
            always_print_fields_with_no_presence=options.emit_unpopulated,
            preserving_proto_field_name=options.use_proto_names,
            use_integers_for_enums=options.enums_as_ints,
            descriptor_pool=m.DESCRIPTOR.file.pool,
        )
    return _build_message_writer(descriptor, options)


def _write_string_form(message: Any) -> str:
    return message.ToJsonString()  # type: ignore[no-any-return]


def _write_timestamp(message: Any) -> str:
    """Timestamp.ToJsonString without its datetime arithmetic: 0, 3, 6 or 9 fraction digits."""
    seconds, nanos = message.seconds, message.nanos
    if not (TIMESTAMP_MIN <= seconds <= TIMESTAMP_MAX and 0 <= nanos < 1_000_000_000):
        raise ValueError(f"Timestamp out of range: seconds={seconds} nanos={nanos}")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    day = date.fromordinal(EPOCH_DAY + days).isoformat()
    return f"{day}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}{_fraction(nanos)}Z"


def _write_duration(message: Any) -> str:
    """Duration.ToJsonString: "-1.500s"; both parts carry the sign."""
    seconds, nanos = message.seconds, message.nanos
    if (
        not -DURATION_MAX <= seconds <= DURATION_MAX
        or not -1_000_000_000 < nanos < 1_000_000_000
        or (seconds < 0 < nanos)
        or (nanos < 0 < seconds)
    ):
        raise ValueError(f"Duration out of range: seconds={seconds} nanos={nanos}")
    sign = "-" if seconds < 0 or nanos < 0 else ""
    return f"{sign}{abs(seconds)}{_fraction(abs(nanos))}s"


def _fraction(nanos: int) -> str:
    if not nanos:
        return ""
    if not nanos % 1_000_000:
        return f".{nanos // 1_000_000:03d}"
    if not nanos % 1000:
        return f".{nanos // 1000:06d}"
    return f".{nanos:09d}"


def _build_message_writer(descriptor: Descriptor, options: JsonOptions) -> _Writer:
    """Set fields in field-number order (ListFields), then defaults in declaration order."""
    fields: dict[FieldDescriptor, tuple[str, _Writer | None]] = {}
    defaults: list[tuple[str, Any]] = []
    for field in descriptor.fields:
        name = field.name if options.use_proto_names else field.json_name
        fields[field] = (name, _field_writer(field, options))
        if options.emit_unpopulated and not field.has_presence:
            defaults.append((name, _default_json(field, options)))

    def write(message: Any) -> dict[str, Any]:
        js: dict[str, Any] = {}
        for field, value in message.ListFields():
            entry = fields.get(field) or _extension_entry(field, options)
            js[entry[0]] = value if entry[1] is None else entry[1](value)
        for name, default in defaults:
            if name not in js:
                js[name] = default
        return js

    return write


def _extension_entry(field: FieldDescriptor, options: JsonOptions) -> tuple[str, _Writer | None]:
    return f"[{field.full_name}]", _field_writer(field, options)


def _default_json(field: FieldDescriptor, options: JsonOptions) -> Any:
    # Written only for the messages being encoded right now, never handed out: sharing is safe.
    if is_map_field(field):
        return {}
    if field.is_repeated:
        return []
    convert = _value_writer(field, options)
    return field.default_value if convert is None else convert(field.default_value)


def _field_writer(field: FieldDescriptor, options: JsonOptions) -> _Writer | None:
    """The writer of a whole field (list, map or single value); None when it is the identity."""
    if is_map_field(field):
        entry = field.message_type
        assert entry is not None
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        value_writer = _value_writer(value_field, options)
        key_writer = _map_key_writer(key_field)
        if value_writer is None and key_writer is None:
            return dict
        if key_writer is None:
            assert value_writer is not None
            vw = value_writer
            return lambda m: {k: vw(v) for k, v in m.items()}
        kw = key_writer
        if value_writer is None:
            return lambda m: {kw(k): v for k, v in m.items()}
        vw = value_writer
        return lambda m: {kw(k): vw(v) for k, v in m.items()}
    convert = _value_writer(field, options)
    if field.is_repeated:
        if convert is None:
            return list
        c = convert
        return lambda values: [c(v) for v in values]
    return convert


def _map_key_writer(key: FieldDescriptor) -> _Writer | None:
    if key.type == FieldDescriptor.TYPE_STRING:
        return None
    if key.type == FieldDescriptor.TYPE_BOOL:
        return lambda k: "true" if k else "false"
    return str


def _value_writer(field: FieldDescriptor, options: JsonOptions) -> _Writer | None:
    """The writer of one value of `field`; None when the upb value is already the JSON value."""
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_MESSAGE:
        assert field.message_type is not None
        return _writer(field.message_type, options)
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        assert field.enum_type is not None
        return None if options.enums_as_ints else _enum_writer(field.enum_type)
    if cpp in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64):
        return str
    if cpp == FieldDescriptor.CPPTYPE_DOUBLE:
        return _write_double
    if cpp == FieldDescriptor.CPPTYPE_FLOAT:
        return _write_float
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _write_bytes
    return None  # string, bool, 32-bit integers


def _enum_writer(enum: EnumDescriptor) -> _Writer:
    if enum.full_name == "google.protobuf.NullValue":
        return lambda number: None
    names = {number: value.name for number, value in enum.values_by_number.items()}
    if not enum.is_closed:
        return lambda number: names.get(number, number)
    full_name = enum.full_name

    def write_closed(number: int) -> str:
        name = names.get(number)
        if name is None:
            raise ValueError(f"{number} is not a value of the closed enum {full_name}")
        return name

    return write_closed


def _write_double(value: float) -> float | str:
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _write_float(value: float) -> float | str:
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return ToShortestFloat(value)


def _write_bytes(value: bytes) -> str:
    return binascii.b2a_base64(value, newline=False).decode("ascii")
