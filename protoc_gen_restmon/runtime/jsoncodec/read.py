"""Proto3 JSON -> upb messages: one parser per message type, stricter and faster than json_format.

It reads every form the mapping allows (json_name or proto names, 64-bit integers as strings,
"NaN", base64 with or without padding) and refuses everything else, including what
`google.protobuf.json_format` lets through (an enum given as 1.5, a Timestamp such as
"2020-1-1T1:2:3Z"), with a `FieldValueError`: an RpcError(INVALID_ARGUMENT) naming the field.
The values themselves are read by `scalars`, the decoder the URL's text goes through as well.
Text that is not strict JSON (`load_json`) is an RpcError(INVALID_ARGUMENT) too.

    from_json(b'{"pageCount": "x"}', Book)    # FieldValueError: 'field "pageCount": invalid
                                              #   int32 value "x": expected a decimal integer'
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, Final, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from protoc_gen_restmon.runtime.jsoncodec.depth import MAX_DEPTH, JsonDepthError, check_depth
from protoc_gen_restmon.runtime.jsoncodec.options import (
    DEFAULT_OPTIONS,
    DELEGATED,
    WRAPPERS_FILE,
    JsonOptions,
)
from protoc_gen_restmon.runtime.jsoncodec.registry import descriptor_of, is_map_field
from protoc_gen_restmon.runtime.jsoncodec.scalars import (
    Convert,
    FieldError,
    FieldValueError,
    UnknownEnumName,
    json_path,
    map_key_parser,
    scalar_parser,
    show,
    string_form_parser,
)
from protoc_gen_restmon.runtime.status import Code, RpcError

__all__ = [
    "FieldValueError",
    "JsonSyntaxError",
    "from_json",
    "json_path",
    "json_to_wire",
    "load_json",
    "merge_json",
]

M = TypeVar("M", bound=Message)

# merge(message, json value, ignore_unknown_fields, depth) fills `message` from the value.
_Merge = Callable[[Any, Any, bool, int], None]
# set(message, json value, ignore_unknown_fields, depth) sets one field of `message`.
_Setter = Callable[[Any, Any, bool, int], None]

_MAX_DEPTH: Final = MAX_DEPTH  # as json_format: messages nested deeper are refused
_PARSERS: dict[Descriptor, _Merge] = {}


# --- Strict JSON text -----------------------------------------------------------------------------


class JsonSyntaxError(ValueError):
    """Text that is not strict JSON; `problem` says why ("not UTF-8 at byte 3")."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _reject_constant(name: str) -> Any:
    raise JsonSyntaxError(f'{name} is not JSON (write it as a string: "{name}")')


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonSyntaxError(f"key {show(key)} appears twice in one object")
            seen.add(key)
    return result


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_reject_constant
)


def load_json(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Strict JSON, for request bodies and `from_json` alike: UTF-8, no byte order mark, no key
    twice in one object, no bare NaN/Infinity, no number longer than Python converts, arrays and
    objects nested at most `max_depth` deep (checked before the parser recurses: `depth`).

    Raises JsonSyntaxError saying what is wrong, and where.
    """
    try:
        check_depth(data, max_depth)
        text = data.decode() if isinstance(data, bytes | bytearray) else data
        if text.startswith("\ufeff"):
            raise JsonSyntaxError("starts with a byte order mark")
        return _DECODER.decode(text)
    except UnicodeDecodeError as err:
        problem = f"not UTF-8 at byte {err.start}"
    except json.JSONDecodeError as err:
        problem = f"{err.msg} at line {err.lineno} column {err.colno}"
    except JsonSyntaxError:
        raise
    except JsonDepthError as err:
        problem = str(err)
    except ValueError:
        # int() refuses numbers of more than sys.get_int_max_str_digits() digits, in words that
        # differ between Python versions and name an interpreter setting: not for clients.
        problem = f"a number has more than {sys.get_int_max_str_digits()} digits"
    except RecursionError:  # a max_depth above what the interpreter's stack allows
        problem = "nested too deeply"
    raise JsonSyntaxError(problem)


# --- JSON values into messages --------------------------------------------------------------------


def from_json(data: bytes | str, cls: type[M], options: JsonOptions = DEFAULT_OPTIONS) -> M:
    """Parse proto3 JSON into a new `cls` message (json_name or proto names accepted).

    Anything that is not a valid `cls` in JSON raises RpcError(INVALID_ARGUMENT) naming the field.
    """
    message = cls()
    try:
        document = load_json(data)
    except JsonSyntaxError as err:
        full_name = descriptor_of(cls).full_name
        raise RpcError(
            Code.INVALID_ARGUMENT, f"invalid JSON for {full_name}: {err.problem}"
        ) from None
    merge_json(message, document, options)
    return message


def merge_json(
    message: Message,
    document: object,
    options: JsonOptions = DEFAULT_OPTIONS,
    source: str = "field",
) -> None:
    """Merge an already decoded JSON value (`load_json` output) into `message`, as `from_json`.

    For a request body bound to one field (`body: "book"`), pass `{"book": document}`. A bad
    value is a FieldValueError from `source` ("body field" for the gateway).
    """
    try:
        _parser(descriptor_of(message))(message, document, options.ignore_unknown_fields, 0)
    except FieldError as err:
        raise FieldValueError(source, tuple(reversed(err.path)), err.problem) from None
    except RecursionError:
        raise FieldValueError(source, (), "JSON nested too deeply") from None


def json_to_wire(
    data: bytes | str, cls: type[Message], options: JsonOptions = DEFAULT_OPTIONS
) -> bytes:
    """Proto3 JSON of a `cls` message (a request body) -> its wire bytes."""
    return from_json(data, cls, options).SerializeToString()


def _parser(descriptor: Descriptor) -> _Merge:
    found = _PARSERS.get(descriptor)
    if found is None:
        # A recursive message type refers to itself while its parser is built: a forwarder
        # stands in until the real one exists.
        built: list[_Merge] = []
        _PARSERS[descriptor] = lambda m, v, i, d: built[0](m, v, i, d)
        built.append(_build_parser(descriptor))
        found = _PARSERS[descriptor] = built[0]
    return found


def _build_parser(descriptor: Descriptor) -> _Merge:
    if descriptor.file.name == WRAPPERS_FILE:
        return _wrapper_parser(descriptor)
    parse = string_form_parser(descriptor.full_name)
    if parse is not None:
        return _string_form_parser(descriptor.name, parse)
    if descriptor.full_name in DELEGATED:
        return _delegated_parser
    return _message_parser(descriptor)


# A key's field: (setter, field number, oneof name or "", null is a value rather than "not set").
_Entry = tuple[_Setter, int, str, bool]


def _fields_by_key(descriptor: Descriptor) -> dict[str, _Entry]:
    """Each field under its json_name and its proto name."""
    fields: dict[str, _Entry] = {}
    for field in descriptor.fields:
        oneof = field.containing_oneof
        entry = (
            _setter(field),
            field.number,
            # A one-field oneof (proto3 `optional`) has nothing to be exclusive with: "".
            oneof.name if oneof is not None and len(oneof.fields) > 1 else "",
            _null_is_value(field),
        )
        fields[field.name] = fields[field.json_name] = entry
    return fields


def _message_parser(descriptor: Descriptor) -> _Merge:
    """A JSON object, keys by json_name or proto name; null means "not set"."""
    full_name = descriptor.full_name
    fields = _fields_by_key(descriptor)

    def merge(message: Any, value: Any, ignore: bool, depth: int) -> None:
        if type(value) is not dict:
            raise FieldError(f"expected an object ({full_name}), got {show(value)}")
        if depth > _MAX_DEPTH:
            raise FieldError(f"messages nested deeper than {_MAX_DEPTH}")
        message.SetInParent()
        seen: set[int] = set()
        oneofs: dict[str, str] = {}
        for key, item in value.items():
            entry = fields.get(key)
            if entry is None:
                if ignore:
                    continue
                raise FieldError(f"no such field in {full_name}", [key])
            setter, number, oneof, null_is_value = entry
            if number in seen:
                raise FieldError("given twice, by its JSON name and by its proto name", [key])
            seen.add(number)
            if item is None and not null_is_value:
                continue
            if oneof:
                if oneof in oneofs:
                    raise FieldError(f"oneof {oneof} already set by {oneofs[oneof]}", [key])
                oneofs[oneof] = key
            try:
                setter(message, item, ignore, depth + 1)
            except FieldError as err:
                err.path.append(key)
                raise

    return merge


def _setter(field: FieldDescriptor) -> _Setter:
    if is_map_field(field):
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
    convert = scalar_parser(field)
    if field.is_repeated:
        return _repeated_scalar_setter(name, convert)

    def set_scalar(message: Any, value: Any, ignore: bool, depth: int) -> None:
        try:
            setattr(message, name, convert(value))
        except UnknownEnumName:
            if not ignore:
                raise
        except ValueError as err:  # upb refuses what the checks let through (lone surrogates)
            raise FieldError(f"invalid value {show(value)}: {err}") from None

    return set_scalar


def _repeated_scalar_setter(name: str, convert: Convert) -> _Setter:
    def set_list(message: Any, values: Any, ignore: bool, depth: int) -> None:
        if type(values) is not list:
            raise FieldError(f"expected an array, got {show(values)}")
        converted = []
        index = 0
        try:
            for index, value in enumerate(values):  # noqa: B007 (index is read in the handler)
                try:
                    converted.append(convert(value))
                except UnknownEnumName:
                    if not ignore:
                        raise
            getattr(message, name).extend(converted)
        except FieldError as err:
            err.path.append(f"[{index}]")
            raise
        except ValueError as err:
            raise FieldError(f"invalid value in the array: {err}") from None

    return set_list


def _repeated_message_setter(name: str, message_type: Descriptor) -> _Setter:
    def set_list(message: Any, values: Any, ignore: bool, depth: int) -> None:
        if type(values) is not list:
            raise FieldError(f"expected an array, got {show(values)}")
        merge = _parser(message_type)
        container = getattr(message, name)
        for index, value in enumerate(values):
            try:
                merge(container.add(), value, ignore, depth)
            except FieldError as err:
                err.path.append(f"[{index}]")
                raise

    return set_list


def _map_setter(field: FieldDescriptor) -> _Setter:
    entry = field.message_type
    assert entry is not None
    name = field.name
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    convert_key = map_key_parser(key_field)
    value_type = value_field.message_type
    convert_value = None if value_type is not None else scalar_parser(value_field)

    def set_map(message: Any, values: Any, ignore: bool, depth: int) -> None:
        if type(values) is not dict:
            raise FieldError(f"expected an object, got {show(values)}")
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
                    except UnknownEnumName:
                        if not ignore:
                            raise
            except FieldError as err:
                err.path.append(f"[{key}]")
                raise
            except ValueError as err:
                raise FieldError(f"invalid value: {err}", [f"[{key}]"]) from None

    return set_map


def _null_is_value(field: FieldDescriptor) -> bool:
    """null sets google.protobuf.Value and NullValue fields; for any other field it means unset."""
    if field.message_type is not None:
        return field.message_type.full_name == "google.protobuf.Value"
    return field.enum_type is not None and field.enum_type.full_name == "google.protobuf.NullValue"


# The JSON side of `scalars.message_value_parser`, one call shorter: these types are common.


def _wrapper_parser(descriptor: Descriptor) -> _Merge:
    """The wrappers: their bare value."""
    convert = scalar_parser(descriptor.fields_by_name["value"])

    def merge(message: Any, value: Any, ignore: bool, depth: int) -> None:
        try:
            message.value = convert(value)
        except ValueError as err:  # upb refuses what the checks let through (lone surrogates)
            raise FieldError(f"invalid value {show(value)}: {err}") from None
        message.SetInParent()

    return merge


def _string_form_parser(type_name: str, parse: Callable[[Any, str], None]) -> _Merge:
    """Timestamp (RFC 3339), Duration ("1.5s"), FieldMask ("a.b,c")."""

    def merge(message: Any, value: Any, ignore: bool, depth: int) -> None:
        if type(value) is not str:
            raise FieldError(f"expected a {type_name} string, got {show(value)}")
        parse(message, value)
        message.SetInParent()

    return merge


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
        raise FieldError(str(err)) from None
    except Exception as err:
        # ParseDict lets some bad input through as KeyError, TypeError, … (`{"any": []}`);
        # json_format.Parse turns every exception into a ParseError too.
        raise FieldError(f"invalid {message.DESCRIPTOR.full_name}: {err!r}") from None
    message.SetInParent()
