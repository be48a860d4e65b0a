"""JSON Schemas of single values: scalars and enums, in the request and the response view.

Request: what `runtime/jsoncodec/scalars.py` accepts (a JSON value, or with `text` the text of
a path variable or query parameter). Response: what `runtime/jsoncodec/write.py` writes.
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor

from protoc_gen_restmon.runtime.openapi import patterns

Schema = dict[str, Any]

F = FieldDescriptor
_INT_RANGES: Final = {
    F.TYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    F.TYPE_SINT32: ("int32", -(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: ("int32", -(2**31), 2**31 - 1),
    F.TYPE_UINT32: ("uint32", 0, 2**32 - 1),
    F.TYPE_FIXED32: ("uint32", 0, 2**32 - 1),
    F.TYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    F.TYPE_SINT64: ("int64", -(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: ("int64", -(2**63), 2**63 - 1),
    F.TYPE_UINT64: ("uint64", 0, 2**64 - 1),
    F.TYPE_FIXED64: ("uint64", 0, 2**64 - 1),
}
_64_BIT: Final = frozenset({"int64", "uint64"})
_DOUBLE_MAX: Final = 1.7976931348623157e308
_FLOAT_OVERFLOW: Final = 3.4028235677973366e38  # scalars._FLOAT_OVERFLOW
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def scalar_schema(field: FieldDescriptor, *, request: bool, text: bool = False) -> Schema:
    """One value of a non-message, non-enum field."""
    kind = field.type
    if kind in _INT_RANGES:
        return integer_schema(*_INT_RANGES[kind], request=request, text=text)
    if kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return floating_schema(kind == F.TYPE_FLOAT, request=request, text=text)
    if kind == F.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == F.TYPE_STRING:
        return {"type": "string"}
    assert kind == F.TYPE_BYTES, field.full_name
    pattern = patterns.BASE64_READ if request else patterns.BASE64_WRITE
    return {"type": "string", "contentEncoding": "base64", "pattern": pattern}


def shared_scalar_name(field: FieldDescriptor) -> str | None:
    """The component of a scalar type whose schema is long: `scalar-int64` (with `-`, which no
    proto name has); None for bool and string, whose schemas are short."""
    kind = field.type
    if kind in _INT_RANGES:
        return f"scalar-{_INT_RANGES[kind][0]}"
    names = {F.TYPE_DOUBLE: "double", F.TYPE_FLOAT: "float", F.TYPE_BYTES: "bytes"}
    return f"scalar-{names[kind]}" if kind in names else None


def integer_schema(
    format_: str, low: int, high: int, *, request: bool, text: bool = False
) -> Schema:
    """Requests: a JSON number with an integral value, or its decimal text; responses: a number
    for 32-bit types, a decimal string for 64-bit ones (docs/http-transcoding.md §4)."""
    number: Schema = {"type": "integer", "format": format_, "minimum": low, "maximum": high}
    string: Schema = {
        "type": "string",
        "format": format_,
        "pattern": patterns.integer_range(low, high, lenient=request),
    }
    if not request:
        return string if format_ in _64_BIT else number
    if text:  # a query value: its text is the number's; a 64-bit one may not fit a double
        return string if format_ in _64_BIT else number
    return {"anyOf": [number, string]}


def floating_schema(is_float: bool, *, request: bool, text: bool = False) -> Schema:
    format_ = "float" if is_float else "double"
    number: Schema = {"type": "number", "format": format_}
    if is_float:
        number |= {"exclusiveMinimum": -_FLOAT_OVERFLOW, "exclusiveMaximum": _FLOAT_OVERFLOW}
    else:
        number |= {"minimum": -_DOUBLE_MAX, "maximum": _DOUBLE_MAX}
    if not request or text:
        return {"anyOf": [number, {"type": "string", "enum": list(patterns.SPECIAL_FLOATS)}]}
    pattern = patterns.FLOAT_TEXT if is_float else patterns.DOUBLE_TEXT
    return {"anyOf": [number, {"type": "string", "pattern": pattern}]}


def enum_schema(enum: EnumDescriptor, *, request: bool, as_ints: bool, lenient: bool) -> Schema:
    """An enum value. Responses: its name, or the number of a value the enum does not declare
    (open enums) or every number under `enums_as_ints` / `$alt=json;enum-encoding=int`.
    Requests: a name or a number (of an int32; a declared one for closed enums), or the
    number's text; `lenient` (ignore_unknown_fields): any string (unknown names are skipped)."""
    names = [value.name for value in enum.values]
    numbers = [value.number for value in enum.values]
    name: Schema = {"type": "string", "enum": names}
    if enum.full_name == "google.protobuf.NullValue":
        return (
            {"type": "null"} if not request else {"anyOf": [{"type": "null"}, name, _numbers(enum)]}
        )
    if not request:
        integer: Schema = {"type": "integer", "format": "int32"}
        return integer if as_ints else {"anyOf": [name, integer]}
    if enum.is_closed:
        text_number: Schema = {"type": "string", "pattern": patterns.enum_numbers(numbers)}
    else:
        text_number = {
            "type": "string",
            "pattern": patterns.integer_range(INT32_MIN, INT32_MAX, lenient=True),
        }
    forms = [{"type": "string"} if lenient else name, _numbers(enum), text_number]
    return {"anyOf": forms}


def _numbers(enum: EnumDescriptor) -> Schema:
    if enum.is_closed:
        return {"type": "integer", "enum": sorted({value.number for value in enum.values})}
    return {"type": "integer", "format": "int32", "minimum": INT32_MIN, "maximum": INT32_MAX}


def map_key_schema(field: FieldDescriptor, *, request: bool) -> Schema:
    """`propertyNames` of a map: keys are strings whatever the key type (`"12"`, `"true"`)."""
    kind = field.type
    if kind in _INT_RANGES:
        _, low, high = _INT_RANGES[kind]
        return {"pattern": patterns.integer_range(low, high, lenient=request)}
    if kind == F.TYPE_BOOL:
        return {"enum": ["true", "false"]}
    return {}
