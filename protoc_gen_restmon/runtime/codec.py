"""Proto3 JSON for upb messages built from embedded descriptors, and the crossings into betterproto.

The JSON is the proto3 JSON mapping exactly as `google.protobuf.json_format` writes it
(https://protobuf.dev/programming-guides/json/); the tests hold it to `json_format` byte for byte.
`json_format` itself walks every descriptor on every call, so this module compiles one writer and
one parser per message type (and per option set) on first use and keeps them: the same output, a
fraction of the time. Any, Struct, Value and ListValue are rare and are handed to `json_format`.
Between upb messages and betterproto objects it copies field by field (see "betterproto" below).

    registry = DescriptorRegistry()
    registry.add_module(gen.bookstore.v1._restmon_monitor)
    Book = registry.message_class("bookstore.v1.Book")
    to_json(Book(title="Dune", isbn_13="978"))      # b'{"title":"Dune","isbn":"978",...}'
    from_json(b'{"pageCount": "x"}', Book)           # RpcError(INVALID_ARGUMENT,
                                                     #   'field pageCount: expected int32, got "x"')
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from types import ModuleType
from typing import Any, Final, TypeVar, cast

import betterproto
from betterproto import PLACEHOLDER
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.internal.type_checkers import ToShortestFloat
from google.protobuf.message import DecodeError, Message

from protoc_gen_restmon.runtime.status import Code, RpcError

# Whether betterproto's own wire codec (`bytes(obj)`, `parse`) runs in Rust: on import betterproto
# swaps its pure-Python one for `betterproto_rust_codec` when that imports (`pip install
# "betterproto[rust-codec]"`). Optional, and only informative: nothing here imports or uses it.
RUST_CODEC: Final = sys.modules.get("betterproto_rust_codec") is not None

__all__ = [
    "RUST_CODEC",
    "DescriptorError",
    "DescriptorRegistry",
    "JsonOptions",
    "from_betterproto",
    "from_json",
    "json_to_wire",
    "merge_json",
    "to_betterproto",
    "to_json",
    "wire_to_json",
]

M = TypeVar("M", bound=Message)
B = TypeVar("B", bound=betterproto.Message)


# --- Descriptors -------------------------------------------------------------------------------


class DescriptorError(Exception):
    """Embedded descriptors that do not fit together, or a message the registry does not hold."""


class DescriptorRegistry:
    """A descriptor pool of its own, filled from generated monitor modules' `FILE_DESCRIPTORS`.

    A file embedded by several packages (a shared dependency, a well-known type) is loaded once;
    two different definitions under one file name are a `DescriptorError`. Comments
    (`source_code_info`) do not count as a difference.
    """

    def __init__(self) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        self._files: dict[str, tuple[bytes, str]] = {}  # name -> (definition, who embedded it)
        self._classes: dict[str, type[Message]] = {}

    def add_module(self, module: ModuleType) -> None:
        """Load every file of `module.FILE_DESCRIPTORS` (name, base64), dependencies first."""
        files = getattr(module, "FILE_DESCRIPTORS", None)
        if files is None:
            raise DescriptorError(
                f"{module.__name__} has no FILE_DESCRIPTORS: pass a generated monitor module"
            )
        for name, encoded in files:
            self.add_file(name, base64.b64decode(encoded), source=module.__name__)

    def add_file(self, name: str, serialized: bytes, *, source: str = "") -> None:
        """Load one serialized FileDescriptorProto; its imports must be loaded already."""
        proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
        if proto.name != name:
            raise DescriptorError(f"{source}: descriptor of {proto.name!r} listed as {name!r}")
        definition = _definition(proto)
        known = self._files.get(name)
        if known is not None:
            if known[0] != definition:
                raise DescriptorError(
                    f"{name}: {source or 'a file'} defines it differently than {known[1]} did"
                )
            return
        try:
            self.pool.Add(proto)
        except TypeError as err:  # upb's way of saying "does not build": a missing import, …
            raise DescriptorError(f"{name} (from {source or 'a file'}): {err}") from err
        self._files[name] = (definition, source or "a file")

    def message_class(self, proto_name: str) -> type[Message]:
        """The upb message class of `proto_name` ("bookstore.v1.Book"), built once."""
        cls = self._classes.get(proto_name)
        if cls is None:
            try:
                found = self.pool.FindMessageTypeByName(proto_name.lstrip("."))
            except KeyError:
                raise DescriptorError(
                    f"message {proto_name} is not in the registry: add its package's monitor module"
                ) from None
            cls = self._classes[proto_name] = message_factory.GetMessageClass(found)
        return cls


def _definition(proto: descriptor_pb2.FileDescriptorProto) -> bytes:
    stripped = descriptor_pb2.FileDescriptorProto()
    stripped.CopyFrom(proto)
    stripped.ClearField("source_code_info")
    return stripped.SerializeToString(deterministic=True)


# --- Options -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JsonOptions:
    """How to write (and parse) JSON. The defaults are grpc-gateway v2's."""

    emit_unpopulated: bool = True  # write fields without presence even at their default
    use_proto_names: bool = False  # `display_name` rather than `displayName`
    enums_as_ints: bool = False  # `3` rather than `"GENRE_MYSTERY"`
    ignore_unknown_fields: bool = False  # parsing: skip unknown keys and enum names, not a 400


DEFAULT_OPTIONS: Final = JsonOptions()

# --- Writing -----------------------------------------------------------------------------------

_Writer = Callable[[Any], Any]  # a value as a upb message holds it -> the value json.dumps writes
_WriterKey = tuple[Descriptor, bool, bool, bool]

_WRITERS: dict[_WriterKey, _Writer] = {}
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_WRAPPERS_FILE: Final = "google/protobuf/wrappers.proto"
_STRING_FORMS: Final = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)
_DELEGATED: Final = frozenset(
    {
        "google.protobuf.Any",
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
    }
)


def to_json(message: Message, options: JsonOptions = DEFAULT_OPTIONS) -> bytes:
    """`message` in proto3 JSON: compact UTF-8, the keys and values `json_format` writes.

    A message that has no JSON form (a Timestamp out of range, an Any of an unknown type, a Value
    holding NaN) is the server's fault: RpcError(INTERNAL).
    """
    try:
        return _ENCODER.encode(_writer(_descriptor(message), options)(message)).encode()
    except (ValueError, TypeError, json_format.Error) as err:
        raise RpcError(
            Code.INTERNAL, f"cannot write {message.DESCRIPTOR.full_name} as JSON: {err}"
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


def _build_writer(descriptor: Descriptor, options: JsonOptions) -> _Writer:
    full_name = descriptor.full_name
    if descriptor.file.name == _WRAPPERS_FILE:
        inner = _value_writer(descriptor.fields_by_name["value"], options)
        return (lambda m: m.value) if inner is None else (lambda m: inner(m.value))
    if full_name == "google.protobuf.Timestamp":
        return _write_timestamp
    if full_name == "google.protobuf.Duration":
        return _write_duration
    if full_name in _STRING_FORMS:
        return _write_string_form
    if full_name in _DELEGATED:
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
    if not (_TIMESTAMP_MIN <= seconds <= _TIMESTAMP_MAX and 0 <= nanos < 1_000_000_000):
        raise ValueError(f"Timestamp out of range: seconds={seconds} nanos={nanos}")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    day = date.fromordinal(_EPOCH_DAY + days).isoformat()
    return f"{day}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}{_fraction(nanos)}Z"


def _write_duration(message: Any) -> str:
    """Duration.ToJsonString: "-1.500s"; both parts carry the sign."""
    seconds, nanos = message.seconds, message.nanos
    if (
        not -_DURATION_MAX <= seconds <= _DURATION_MAX
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
    if _is_map(field):
        return {}
    if field.is_repeated:
        return []
    convert = _value_writer(field, options)
    return field.default_value if convert is None else convert(field.default_value)


def _field_writer(field: FieldDescriptor, options: JsonOptions) -> _Writer | None:
    """The writer of a whole field (list, map or single value); None when it is the identity."""
    if _is_map(field):
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


def _descriptor(message: Message | type[Message]) -> Descriptor:
    return cast(Descriptor, message.DESCRIPTOR)


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and field.is_repeated and entry.GetOptions().map_entry


# --- Parsing -----------------------------------------------------------------------------------


class _FieldError(Exception):
    """Bad input at a field; `path` grows from the innermost key outwards as it propagates."""

    def __init__(self, problem: str, path: list[str] | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path if path is not None else []

    def describe(self) -> str:
        if not self.path:
            return self.problem
        where = ""
        for segment in reversed(self.path):
            where += segment if segment.startswith("[") or not where else f".{segment}"
        return f"field {where}: {self.problem}"


class _UnknownEnumName(_FieldError):
    """An enum name the schema does not have: skipped under `ignore_unknown_fields`."""


# merge(message, json value, ignore_unknown_fields, depth) fills `message` from the value.
_Merge = Callable[[Any, Any, bool, int], None]
# set(message, json value, ignore_unknown_fields, depth) sets one field of `message`.
_Setter = Callable[[Any, Any, bool, int], None]
_Convert = Callable[[Any], Any]  # one JSON scalar -> the value upb stores, or _FieldError

_MAX_DEPTH: Final = 100  # as json_format: messages nested deeper are refused
_PARSERS: dict[Descriptor, _Merge] = {}


def _reject_constant(name: str) -> Any:
    raise ValueError(f'{name} is not JSON (write it as a string: "{name}")')


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key {json.dumps(key)} appears twice in one object")
            seen.add(key)
    return result


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_reject_constant
)


def from_json(data: bytes | str, cls: type[M], options: JsonOptions = DEFAULT_OPTIONS) -> M:
    """Parse proto3 JSON into a new `cls` message (json_name or proto names accepted).

    Anything that is not a valid `cls` in JSON raises RpcError(INVALID_ARGUMENT) naming the field.
    """
    message = cls()
    merge_json(message, _decode(data, _descriptor(cls)), options)
    return message


def merge_json(message: Message, document: object, options: JsonOptions = DEFAULT_OPTIONS) -> None:
    """Merge an already decoded JSON value (`json.loads` output) into `message`, as `from_json`.

    For a request body bound to one field (`body: "book"`), pass `{"book": document}`.
    """
    try:
        _parser(_descriptor(message))(message, document, options.ignore_unknown_fields, 0)
    except _FieldError as err:
        raise RpcError(Code.INVALID_ARGUMENT, err.describe()) from None
    except RecursionError:
        raise RpcError(Code.INVALID_ARGUMENT, "JSON nested too deeply") from None


def json_to_wire(
    data: bytes | str, cls: type[Message], options: JsonOptions = DEFAULT_OPTIONS
) -> bytes:
    """Proto3 JSON of a `cls` message (a request body) -> its wire bytes."""
    return from_json(data, cls, options).SerializeToString()


def _decode(data: bytes | str, descriptor: Descriptor) -> Any:
    try:
        text = data.decode() if isinstance(data, bytes | bytearray) else data
        return _DECODER.decode(text)
    except UnicodeDecodeError as err:
        problem = f"not UTF-8 at byte {err.start}"
    except json.JSONDecodeError as err:
        problem = f"{err.msg} at line {err.lineno} column {err.colno}"
    except ValueError as err:  # a duplicate key, NaN, an integer too long to convert
        problem = str(err)
    except RecursionError:
        problem = "nested too deeply"
    raise RpcError(Code.INVALID_ARGUMENT, f"invalid JSON for {descriptor.full_name}: {problem}")


def _parser(descriptor: Descriptor) -> _Merge:
    found = _PARSERS.get(descriptor)
    if found is None:
        built: list[_Merge] = []  # recursive types: see _writer
        _PARSERS[descriptor] = lambda m, v, i, d: built[0](m, v, i, d)
        built.append(_build_parser(descriptor))
        found = _PARSERS[descriptor] = built[0]
    return found


def _build_parser(descriptor: Descriptor) -> _Merge:
    full_name = descriptor.full_name
    if descriptor.file.name == _WRAPPERS_FILE:
        return _wrapper_parser(descriptor)
    if full_name in _STRING_FORMS:
        return _string_form_parser(full_name.rsplit(".", 1)[1])
    if full_name in _DELEGATED:
        return _delegated_parser
    return _message_parser(descriptor)


def _message_parser(descriptor: Descriptor) -> _Merge:
    """A JSON object, keys by json_name or proto name; null means "not set"."""
    full_name = descriptor.full_name
    # key -> (setter, field number, oneof name or "", null is a value rather than "not set").
    # A one-field oneof (proto3 `optional`) has nothing to be exclusive with: "".
    fields: dict[str, tuple[_Setter, int, str, bool]] = {}
    for field in descriptor.fields:
        oneof = field.containing_oneof
        entry = (
            _setter(field),
            field.number,
            oneof.name if oneof is not None and len(oneof.fields) > 1 else "",
            _null_is_value(field),
        )
        fields[field.name] = fields[field.json_name] = entry

    def merge(message: Any, value: Any, ignore: bool, depth: int) -> None:
        if type(value) is not dict:
            raise _FieldError(f"expected an object ({full_name}), got {_show(value)}")
        if depth > _MAX_DEPTH:
            raise _FieldError(f"messages nested deeper than {_MAX_DEPTH}")
        message.SetInParent()
        seen: set[int] = set()
        oneofs: dict[str, str] = {}
        for key, item in value.items():
            entry = fields.get(key)
            if entry is None:
                if ignore:
                    continue
                raise _FieldError(f"no such field in {full_name}", [key])
            setter, number, oneof, null_is_value = entry
            if number in seen:
                raise _FieldError("given twice, by its JSON name and by its proto name", [key])
            seen.add(number)
            if item is None and not null_is_value:
                continue
            if oneof:
                if oneof in oneofs:
                    raise _FieldError(f"oneof {oneof} already set by {oneofs[oneof]}", [key])
                oneofs[oneof] = key
            try:
                setter(message, item, ignore, depth + 1)
            except _FieldError as err:
                err.path.append(key)
                raise

    return merge


def _setter(field: FieldDescriptor) -> _Setter:
    if _is_map(field):
        return _map_setter(field)
    name = field.name
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        assert field.message_type is not None
        message_type = field.message_type
        if field.is_repeated:
            return _repeated_message_setter(name, message_type)

        def set_message(message: Any, value: Any, ignore: bool, depth: int) -> None:
            _parser(message_type)(getattr(message, name), value, ignore, depth)

        return set_message
    convert = _scalar_parser(field)
    if field.is_repeated:
        return _repeated_scalar_setter(name, convert)

    def set_scalar(message: Any, value: Any, ignore: bool, depth: int) -> None:
        try:
            setattr(message, name, convert(value))
        except _UnknownEnumName:
            if not ignore:
                raise
        except ValueError as err:  # upb refuses what the checks let through (lone surrogates)
            raise _FieldError(f"invalid value {_show(value)}: {err}") from None

    return set_scalar


def _repeated_scalar_setter(name: str, convert: _Convert) -> _Setter:
    def set_list(message: Any, values: Any, ignore: bool, depth: int) -> None:
        if type(values) is not list:
            raise _FieldError(f"expected an array, got {_show(values)}")
        converted = []
        index = 0
        try:
            for index, value in enumerate(values):  # noqa: B007 (index is read in the handler)
                try:
                    converted.append(convert(value))
                except _UnknownEnumName:
                    if not ignore:
                        raise
            getattr(message, name).extend(converted)
        except _FieldError as err:
            err.path.append(f"[{index}]")
            raise
        except ValueError as err:
            raise _FieldError(f"invalid value in the array: {err}") from None

    return set_list


def _repeated_message_setter(name: str, message_type: Descriptor) -> _Setter:
    def set_list(message: Any, values: Any, ignore: bool, depth: int) -> None:
        if type(values) is not list:
            raise _FieldError(f"expected an array, got {_show(values)}")
        merge = _parser(message_type)
        container = getattr(message, name)
        for index, value in enumerate(values):
            try:
                merge(container.add(), value, ignore, depth)
            except _FieldError as err:
                err.path.append(f"[{index}]")
                raise

    return set_list


def _map_setter(field: FieldDescriptor) -> _Setter:
    entry = field.message_type
    assert entry is not None
    name = field.name
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    convert_key = _map_key_parser(key_field)
    value_type = value_field.message_type
    convert_value = None if value_type is not None else _scalar_parser(value_field)

    def set_map(message: Any, values: Any, ignore: bool, depth: int) -> None:
        if type(values) is not dict:
            raise _FieldError(f"expected an object, got {_show(values)}")
        target = getattr(message, name)
        for key, value in values.items():
            try:
                converted = convert_key(key)
                if convert_value is None:
                    assert value_type is not None
                    _parser(value_type)(target[converted], value, ignore, depth)
                else:
                    try:
                        target[converted] = convert_value(value)
                    except _UnknownEnumName:
                        if not ignore:
                            raise
            except _FieldError as err:
                err.path.append(f"[{key}]")
                raise
            except ValueError as err:
                raise _FieldError(f"invalid value: {err}", [f"[{key}]"]) from None

    return set_map


def _null_is_value(field: FieldDescriptor) -> bool:
    """null sets google.protobuf.Value and NullValue fields; for any other field it means unset."""
    if field.message_type is not None:
        return field.message_type.full_name == "google.protobuf.Value"
    return field.enum_type is not None and field.enum_type.full_name == "google.protobuf.NullValue"


def _wrapper_parser(descriptor: Descriptor) -> _Merge:
    convert = _scalar_parser(descriptor.fields_by_name["value"])

    def merge(message: Any, value: Any, ignore: bool, depth: int) -> None:
        try:
            message.value = convert(value)
        except ValueError as err:
            raise _FieldError(f"invalid value {_show(value)}: {err}") from None
        message.SetInParent()

    return merge


def _string_form_parser(type_name: str) -> _Merge:
    """Timestamp (RFC 3339), Duration ("1.5s"), FieldMask ("a.b,c")."""
    parse = {"Timestamp": _parse_timestamp, "Duration": _parse_duration}.get(
        type_name, _parse_with_method
    )

    def merge(message: Any, value: Any, ignore: bool, depth: int) -> None:
        if type(value) is not str:
            raise _FieldError(f"expected a {type_name} string, got {_show(value)}")
        try:
            parse(message, value)
        except ValueError as err:
            raise _FieldError(f"invalid {type_name} {_show(value)}: {err}") from None
        message.SetInParent()

    return merge


def _parse_with_method(message: Any, value: str) -> None:
    message.FromJsonString(value)


# RFC 3339 `date-time`, upper case, as protojson and grpc-gateway accept it. json_format's own
# FromJsonString goes through strptime (a third of the time of parsing a typical message) and
# also takes non-RFC forms such as "2020-1-1T1:2:3Z".
_TIMESTAMP: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)
_EPOCH_DAY: Final = date(1970, 1, 1).toordinal()
_TIMESTAMP_MIN: Final = -62135596800  # 0001-01-01T00:00:00Z
_TIMESTAMP_MAX: Final = 253402300799  # 9999-12-31T23:59:59Z


_DURATION: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]{1,9}))?s\Z")
_DURATION_MAX: Final = 315576000000  # 10,000 years, as duration.proto says


def _parse_duration(message: Any, value: str) -> None:
    match = _DURATION.match(value)
    if match is None:
        raise ValueError('not a number of seconds such as "1.5s"')
    sign, whole, fraction = match.groups()
    seconds, nanos = int(whole), int(fraction.ljust(9, "0")) if fraction else 0
    if seconds > _DURATION_MAX:
        raise ValueError(f"more than {_DURATION_MAX} seconds")
    message.seconds, message.nanos = (-seconds, -nanos) if sign else (seconds, nanos)


def _parse_timestamp(message: Any, value: str) -> None:
    match = _TIMESTAMP.match(value)
    if match is None:
        raise ValueError("not an RFC 3339 date-time such as 2024-01-31T12:00:00.5Z")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        raise ValueError("time of day out of range")
    seconds = (date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAY) * 86400
    seconds += int(hour) * 3600 + int(minute) * 60 + int(second)
    if sign is not None:
        offset = int(off_h) * 3600 + int(off_m) * 60
        seconds += -offset if sign == "+" else offset
    if not _TIMESTAMP_MIN <= seconds <= _TIMESTAMP_MAX:
        raise ValueError("outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z")
    message.seconds = seconds
    message.nanos = int(fraction.ljust(9, "0")) if fraction else 0


def _delegated_parser(message: Any, value: Any, ignore: bool, depth: int) -> None:
    """Any, Struct, Value, ListValue: json_format, resolving Any types in the message's pool."""
    try:
        json_format.ParseDict(
            value,
            message,
            ignore_unknown_fields=ignore,
            descriptor_pool=message.DESCRIPTOR.file.pool,
            max_recursion_depth=max(1, _MAX_DEPTH - depth),
        )
    except json_format.ParseError as err:
        raise _FieldError(str(err)) from None
    except Exception as err:
        # ParseDict lets some bad input through as KeyError, TypeError, … (`{"any": []}`);
        # json_format.Parse turns every exception into a ParseError too.
        raise _FieldError(f"invalid {message.DESCRIPTOR.full_name}: {err!r}") from None
    message.SetInParent()


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


def _scalar_parser(field: FieldDescriptor) -> _Convert:
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


def _map_key_parser(field: FieldDescriptor) -> _Convert:
    """Map keys are JSON strings whatever the key type: "12", "true"."""
    if field.type == FieldDescriptor.TYPE_STRING:
        return _parse_string
    if field.type == FieldDescriptor.TYPE_BOOL:
        return _parse_bool_key
    convert = _scalar_parser(field)

    def parse_key(key: str) -> Any:
        if not _INTEGER.match(key):
            raise _FieldError(f"map key {_show(key)} is not an integer")
        return convert(key)

    return parse_key


def _integer_parser(type_name: str, low: int, high: int) -> _Convert:
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
            raise _FieldError(f"expected {type_name}, got {_show(value)}")
        if not low <= number <= high:
            raise _FieldError(f"{number} is out of range for {type_name}")
        return number

    return parse


def _parse_double(value: Any) -> float:
    kind = type(value)
    if kind is float:
        if math.isinf(value):
            raise _FieldError('number out of range for double (write "Infinity" as a string)')
        return value  # type: ignore[no-any-return]
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise _FieldError(f"{value} is out of range for double") from None
    if kind is str:
        special = _SPECIAL_FLOATS.get(value)
        if special is not None:
            return special
        if _NUMBER.match(value):
            number = float(value)
            if not math.isinf(number):
                return number
            raise _FieldError(f"{value} is out of range for double")
    raise _FieldError(f"expected a number, got {_show(value)}")


def _parse_float(value: Any) -> float:
    number = _parse_double(value)
    if not math.isinf(number) and abs(number) >= _FLOAT_OVERFLOW:
        raise _FieldError(f"{_show(value)} is out of range for float")
    return number


def _parse_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _FieldError(f"expected true or false, got {_show(value)}")


def _parse_bool_key(value: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise _FieldError(f"map key {_show(value)} is not true or false")


def _parse_string(value: Any) -> str:
    if type(value) is str:
        return value
    raise _FieldError(f"expected a string, got {_show(value)}")


def _parse_bytes(value: Any) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    if type(value) is not str:
        raise _FieldError(f"expected a base64 string, got {_show(value)}")
    digits = value[:-2].rstrip("=") if value.endswith("==") else value.rstrip("=")
    if not _BASE64.match(digits) or len(digits) % 4 == 1:
        raise _FieldError(f"invalid base64 {_show(value)}")
    try:
        return base64.b64decode(digits.translate(_URL_SAFE) + "=" * (-len(digits) % 4))
    except binascii.Error:
        raise _FieldError(f"invalid base64 {_show(value)}") from None


def _enum_parser(enum: EnumDescriptor) -> _Convert:
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
                raise _UnknownEnumName(f"unknown value {_show(value)} for enum {full_name}")
            number = int(value)
        elif kind is int:
            number = value
        elif value is None and full_name == "google.protobuf.NullValue":
            return 0
        else:
            raise _FieldError(f"expected a {full_name} name or number, got {_show(value)}")
        if not -(2**31) <= number < 2**31 or (closed and number not in known):
            raise _FieldError(f"{number} is not a value of enum {full_name}")
        return number

    return parse


def _show(value: Any) -> str:
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


# --- betterproto -------------------------------------------------------------------------------
#
# The crossings copy field by field, guided by betterproto's own field metadata (numbers, oneof
# groups, `optional`, wrappers) and the upb descriptor, instead of going through wire bytes:
# betterproto's pure-Python wire codec takes longer than its JSON (`bytes(book)` ~500 µs,
# `Book().parse(…)` ~800 µs for the 13-field Book of benchmarks/bench_json.py). The result is what
# the wire route gives (the tests compare the two) with these differences, all where betterproto's
# wire codec loses data: a map entry whose key and value are both "" (or empty bytes or messages)
# is kept; a negative Duration with a fraction keeps one sign; a negative enum number stays
# negative (betterproto reads -1 as 2**64 - 1). upb unknown fields are not carried into
# betterproto objects (JSON never has any).

_ToBetterproto = Callable[[Any], Any]  # a upb value -> the betterproto value
_FromBetterproto = Callable[[Any, Any], None]  # (betterproto object, upb message) -> fills it
_TO_BP: dict[tuple[Descriptor, type], _ToBetterproto] = {}
_FROM_BP: dict[tuple[type, Descriptor], _FromBetterproto] = {}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_betterproto(message: Message, betterproto_cls: type[B]) -> B:
    """The betterproto object holding the same message (`betterproto_cls().parse(wire)`)."""
    obj: B = _to_betterproto_plan(_descriptor(message), betterproto_cls)(message)
    return obj


def from_betterproto(obj: betterproto.Message, upb_cls: type[M]) -> M:
    """The upb message holding the same message (`upb_cls.FromString(bytes(obj))`).

    An object the message cannot hold (a str in an int field, a naive datetime) is the
    service's fault: RpcError(INTERNAL).
    """
    message = upb_cls()
    try:
        _from_betterproto_plan(type(obj), _descriptor(message))(obj, message)
    except (TypeError, ValueError, OverflowError, AttributeError) as err:
        raise RpcError(
            Code.INTERNAL, f"invalid {type(obj).__name__} from the service: {err}"
        ) from err
    return message


def _fields_by_number(betterproto_cls: type, descriptor: Descriptor) -> dict[int, Any]:
    """betterproto's metadata of each field, checked against the descriptor."""
    metadata = betterproto_cls._betterproto  # type: ignore[attr-defined]
    by_number = {meta.number: meta for meta in metadata.meta_by_field_name.values()}
    if set(by_number) != {field.number for field in descriptor.fields}:
        raise DescriptorError(
            f"{betterproto_cls.__name__} does not have the fields of {descriptor.full_name}:"
            " generated from another version of the proto?"
        )
    return by_number


def _to_betterproto_plan(descriptor: Descriptor, betterproto_cls: type) -> _ToBetterproto:
    key = (descriptor, betterproto_cls)
    found = _TO_BP.get(key)
    if found is None:
        built: list[_ToBetterproto] = []  # recursive types: see _writer
        _TO_BP[key] = lambda message: built[0](message)
        built.append(_build_to_betterproto(descriptor, betterproto_cls))
        found = _TO_BP[key] = built[0]
    return found


def _build_to_betterproto(descriptor: Descriptor, betterproto_cls: type) -> _ToBetterproto:
    metadata = betterproto_cls._betterproto  # type: ignore[attr-defined]
    by_number = _fields_by_number(betterproto_cls, descriptor)
    fields: dict[FieldDescriptor, tuple[str, _ToBetterproto | None]] = {}
    for field in descriptor.fields:
        name = metadata.field_name_by_number[field.number]
        if _is_map(field):
            entry_cls = metadata.cls_by_field[name]
            entry = entry_cls._betterproto
            value_field = field.message_type.fields_by_name["value"]  # type: ignore[union-attr]
            convert = _value_to_betterproto(
                value_field, entry.meta_by_field_name["value"], entry.cls_by_field.get("value")
            )
            fields[field] = (name, _map_to_betterproto(convert))
            continue
        convert = _value_to_betterproto(
            field, by_number[field.number], metadata.cls_by_field.get(name)
        )
        if field.is_repeated:
            fields[field] = (name, list if convert is None else _list_to_betterproto(convert))
        else:
            fields[field] = (name, convert)

    def convert_message(message: Any) -> Any:
        values = {}
        for field, value in message.ListFields():
            name, convert = fields[field]
            values[name] = value if convert is None else convert(value)
        obj = betterproto_cls(**values)
        obj._serialized_on_wire = True  # as after `parse`: the message was there, even if empty
        return obj

    return convert_message


def _map_to_betterproto(convert: _ToBetterproto | None) -> _ToBetterproto:
    if convert is None:
        return dict
    return lambda entries: {key: convert(value) for key, value in entries.items()}


def _list_to_betterproto(convert: _ToBetterproto) -> _ToBetterproto:
    return lambda values: [convert(value) for value in values]


def _value_to_betterproto(
    field: FieldDescriptor, meta: Any, value_cls: type | None
) -> _ToBetterproto | None:
    """One value of `field` as betterproto holds it; None when it is the upb value itself."""
    if field.message_type is None:
        if field.enum_type is None:
            return None
        assert value_cls is not None
        return value_cls.try_value  # type: ignore[attr-defined,no-any-return]
    if value_cls is datetime:
        # betterproto's _Timestamp.to_datetime: whole microseconds, truncated
        return lambda ts: _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)
    if value_cls is timedelta:
        # betterproto's _Duration.to_timedelta
        return lambda d: timedelta(seconds=d.seconds, microseconds=d.nanos / 1e3)
    if meta.wraps:
        return _unwrap
    assert value_cls is not None
    return _to_betterproto_plan(field.message_type, value_cls)


def _unwrap(wrapper: Any) -> Any:
    return wrapper.value


def _from_betterproto_plan(betterproto_cls: type, descriptor: Descriptor) -> _FromBetterproto:
    key = (betterproto_cls, descriptor)
    found = _FROM_BP.get(key)
    if found is None:
        built: list[_FromBetterproto] = []  # recursive types: see _writer
        _FROM_BP[key] = lambda obj, message: built[0](obj, message)
        built.append(_build_from_betterproto(betterproto_cls, descriptor))
        found = _FROM_BP[key] = built[0]
    return found


def _build_from_betterproto(betterproto_cls: type, descriptor: Descriptor) -> _FromBetterproto:
    """Mirror of betterproto's `Message.dump`: which fields it writes, and how.

    Fields are read raw, the way betterproto's own `__eq__` and `__repr__` do: an unset field holds
    `betterproto.PLACEHOLDER` (its default is built only when the attribute is read, which `dump`
    does for every field, and without end for a recursive message type), and of a oneof only the
    member `_group_current` names is set.
    """
    metadata = betterproto_cls._betterproto  # type: ignore[attr-defined]
    _fields_by_number(betterproto_cls, descriptor)
    steps: list[tuple[str, str, str, bool, _Store]] = []
    for field in descriptor.fields:
        name = metadata.field_name_by_number[field.number]
        meta = metadata.meta_by_field_name[name]
        # Set in a oneof or proto3 `optional`: written even at its default value.
        selected = bool(meta.group) or bool(meta.optional)
        store = _store(field, meta, metadata, name)
        steps.append((name, field.name, meta.group or "", selected, store))

    def fill(obj: Any, message: Any) -> None:
        raw = object.__getattribute__(obj, "__dict__")  # past betterproto's __getattribute__
        chosen = raw["_group_current"]
        for name, upb_name, group, selected, store in steps:
            value = raw[name]
            if value is PLACEHOLDER or value is None:  # None: an unset wrapper or `optional`
                continue
            if group and chosen.get(group) != name:
                continue
            store(message, upb_name, value, selected)
        if raw["_unknown_fields"]:
            message.MergeFromString(raw["_unknown_fields"])

    return fill


# store(upb message, upb field name, betterproto value, written even when default)
_Store = Callable[[Any, str, Any, bool], None]


def _store(field: FieldDescriptor, meta: Any, metadata: Any, name: str) -> _Store:
    if _is_map(field):
        entry = metadata.cls_by_field[name]._betterproto
        value_field = field.message_type.fields_by_name["value"]  # type: ignore[union-attr]
        put = _put(value_field, entry.meta_by_field_name["value"], entry.cls_by_field["value"])
        return _store_map(put)
    put = _put(field, meta, metadata.cls_by_field.get(name))
    if field.is_repeated:
        return _store_list(put)
    if put is None:
        return _store_scalar
    return lambda message, upb_name, value, selected: put(
        getattr(message, upb_name), value, selected
    )


def _store_scalar(message: Any, upb_name: str, value: Any, selected: bool) -> None:
    # betterproto writes a default only where presence says so; -0.0 counts as a default.
    if value or selected:
        setattr(message, upb_name, value)


def _store_list(put: _Put | None) -> _Store:
    def store(message: Any, upb_name: str, values: Any, selected: bool) -> None:
        target = getattr(message, upb_name)
        if put is None:
            target.extend(values)
        else:
            for value in values:
                put(target.add(), value, True)  # every element is written, even an empty one

    return store


def _store_map(put: _Put | None) -> _Store:
    def store(message: Any, upb_name: str, entries: Any, selected: bool) -> None:
        target = getattr(message, upb_name)
        if put is None:
            target.update(entries)
        else:
            for key, value in entries.items():
                put(target[key], value, True)

    return store


# put(upb sub-message, betterproto value, written even when default)
_Put = Callable[[Any, Any, bool], None]


def _put(field: FieldDescriptor, meta: Any, value_cls: type | None) -> _Put | None:
    """How one value of a message-typed field goes into its upb sub-message; None: scalar."""
    if field.message_type is None:
        return None
    if value_cls is datetime:
        return _put_timestamp
    if value_cls is timedelta:
        return _put_duration
    if meta.wraps:
        return _put_wrapped
    assert value_cls is not None
    fill = _from_betterproto_plan(value_cls, field.message_type)

    def put_message(target: Any, obj: Any, selected: bool) -> None:
        fill(obj, target)
        if selected or obj._serialized_on_wire:  # set (or received) empty: still written
            target.SetInParent()

    return put_message


def _put_timestamp(target: Any, value: datetime, selected: bool) -> None:
    # betterproto's _Timestamp.from_datetime, in integers; the epoch is its default.
    offset = value - _EPOCH
    seconds = offset.days * 86400 + offset.seconds
    if seconds or offset.microseconds or selected:
        target.seconds, target.nanos = seconds, offset.microseconds * 1000
        target.SetInParent()


def _put_duration(target: Any, value: timedelta, selected: bool) -> None:
    micros = value // _MICROSECOND
    if micros or selected:
        seconds, rest = divmod(abs(micros), 1_000_000)
        sign = -1 if micros < 0 else 1
        target.seconds, target.nanos = sign * seconds, sign * rest * 1000
        target.SetInParent()


def _put_wrapped(target: Any, value: Any, selected: bool) -> None:
    if value:  # the wrapper itself is written, its default value (-0.0 included) is not
        target.value = value
    target.SetInParent()
