"""Proto3 JSON Schemas of messages, as the gateway's codec reads them (the request view,
`<name>-Input`) and writes them (the response view, `<name>`): docs/openapi.md, "Schemas".

Every message type becomes a component under its full proto name (recursion is a `$ref`), in
the views the document uses; the well-known types have their own JSON forms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from protoc_gen_restmon.runtime.jsoncodec.options import WRAPPERS_FILE, JsonOptions
from protoc_gen_restmon.runtime.openapi import patterns
from protoc_gen_restmon.runtime.openapi.comments import Comments
from protoc_gen_restmon.runtime.openapi.naming import component_name
from protoc_gen_restmon.runtime.openapi.scalars import (
    Schema,
    enum_schema,
    map_key_schema,
    scalar_schema,
    shared_scalar_name,
)

COMPONENTS: Final = "#/components/schemas/"
NULL: Final = {"type": "null"}

_REQUIRED = field_behavior_pb2.REQUIRED
_OUTPUT_ONLY = field_behavior_pb2.OUTPUT_ONLY
_INPUT_ONLY = field_behavior_pb2.INPUT_ONLY

_ANY_JSON: Final = {"type": ["null", "boolean", "number", "string", "array", "object"]}


def is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and field.is_repeated and entry.GetOptions().map_entry


def field_behaviors(field: FieldDescriptor) -> frozenset[int]:
    options = field.GetOptions()
    return frozenset(options.Extensions[field_behavior_pb2.field_behavior])


def nullable(schema: Schema) -> Schema:
    """`schema` or null (a request field given as null is left unset)."""
    if schema.get("type") == "null":
        return schema
    return {"anyOf": [schema, NULL]}


class Schemas:
    """Builds components on demand; `components()` returns those used, sorted by name."""

    def __init__(self, comments: Comments, options: JsonOptions) -> None:
        self.comments = comments
        self.options = options
        self._components: dict[str, Schema] = {}

    def components(self) -> dict[str, Schema]:
        return dict(sorted(self._components.items()))

    # --- references ---

    def message_ref(self, message: Descriptor, *, request: bool) -> Schema:
        name = component_name(message.full_name, request=request)
        if name not in self._components:
            self._components[name] = {}  # reserved first: recursive types refer to themselves
            self._components[name] = self._message_component(message, request)
        return {"$ref": COMPONENTS + name}

    def enum_ref(self, enum: EnumDescriptor, *, request: bool) -> Schema:
        name = component_name(enum.full_name, request=request)
        if name not in self._components:
            schema = enum_schema(
                enum,
                request=request,
                as_ints=self.options.enums_as_ints,
                lenient=self.options.ignore_unknown_fields,
            )
            description = self._enum_description(enum)
            self._components[name] = {"title": enum.name, **schema} | (
                {"description": description} if description else {}
            )
        return {"$ref": COMPONENTS + name}

    def _enum_description(self, enum: EnumDescriptor) -> str:
        lines = [self.comments.get(enum.full_name)]
        for value in enum.values:
            text = self.comments.get(f"{enum.full_name}.{value.name}")
            deprecated = " (deprecated)" if value.GetOptions().deprecated else ""
            if text or deprecated:
                lines.append(f"- `{value.name}`{deprecated}: {' '.join(text.split())}".rstrip(": "))
        return "\n".join(line for line in lines if line).strip()

    # --- fields ---

    def field_schema(self, field: FieldDescriptor, *, request: bool) -> Schema:
        """The JSON value of a whole field: a value, an array or a map object."""
        if is_map(field):
            entry = field.message_type
            assert entry is not None
            key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
            schema: Schema = {
                "type": "object",
                "additionalProperties": self.value_schema(value, request=request),
            }
            names = map_key_schema(key, request=request)
            return schema | ({"propertyNames": names} if names else {})
        if field.is_repeated:
            return {"type": "array", "items": self.value_schema(field, request=request)}
        return self.value_schema(field, request=request)

    def value_schema(self, field: FieldDescriptor, *, request: bool) -> Schema:
        if field.message_type is not None:
            return self.message_ref(field.message_type, request=request)
        if field.enum_type is not None:
            return self.enum_ref(field.enum_type, request=request)
        schema = scalar_schema(field, request=request)
        shared = shared_scalar_name(field)
        if shared is None:
            return schema
        # Numbers and bytes have long patterns: one component each, not one copy per field.
        name = component_name(shared, request=request)
        self._components.setdefault(name, schema)
        return {"$ref": COMPONENTS + name}

    def property_schema(self, field: FieldDescriptor, *, request: bool) -> Schema:
        """A field as a property: its schema (null allowed in requests) and its annotations."""
        schema = self.field_schema(field, request=request)
        null_is_value = _null_is_value(field)
        if request and not null_is_value:
            schema = nullable(schema)
        return schema | self.annotations(field)

    def annotations(self, field: FieldDescriptor) -> Schema:
        notes: Schema = {}
        text = self.comments.get(field.full_name)
        if text:
            notes["description"] = text
        behaviors = field_behaviors(field)
        if _OUTPUT_ONLY in behaviors:
            notes["readOnly"] = True
        if _INPUT_ONLY in behaviors:
            notes["writeOnly"] = True
        if field.GetOptions().deprecated:
            notes["deprecated"] = True
        return notes

    # --- messages ---

    def _message_component(self, message: Descriptor, request: bool) -> Schema:
        schema = well_known_schema(message, request=request)
        if schema is None:
            if message.file.name == WRAPPERS_FILE:
                schema = scalar_schema(message.fields_by_name["value"], request=request)
            else:
                schema = self.message_object(message, request=request)
        notes: Schema = {"title": message.name}
        text = self.comments.get(message.full_name)
        if text:
            notes["description"] = text
        if message.GetOptions().deprecated:
            notes["deprecated"] = True
        return notes | schema

    @staticmethod
    def is_special(message: Descriptor) -> bool:
        """A well-known type or a wrapper: its JSON is not the object of its fields."""
        return (
            message.file.name == WRAPPERS_FILE
            or well_known_schema(message, request=True) is not None
        )

    def message_object(
        self, message: Descriptor, *, request: bool, exclude: Iterable[str] = ()
    ) -> Schema:
        """A message's JSON object, without the fields named (proto names) in `exclude`."""
        left_out = set(exclude)
        fields = [field for field in message.fields if field.name not in left_out]
        return (
            self._request_object(message, fields)
            if request
            else self._response_object(message, fields)
        )

    def _response_object(self, message: Descriptor, fields: list[FieldDescriptor]) -> Schema:
        use_proto = self.options.use_proto_names
        key = {field: field.name if use_proto else field.json_name for field in fields}
        schema: Schema = {
            "type": "object",
            "properties": {key[f]: self.property_schema(f, request=False) for f in fields},
        }
        if self.options.emit_unpopulated:
            required = [key[f] for f in fields if not f.has_presence]
            if required:
                schema["required"] = required
        small, large = _oneof_groups(message, fields)
        conflicts = [{"required": [key[a], key[b]]} for a, b in _pairs(small)]
        if conflicts:
            schema["not"] = {"anyOf": conflicts}
        if large:
            schema["allOf"] = [
                _at_most_one([{"required": [key[f]]} for f in group]) for group in large
            ]
        schema["additionalProperties"] = False
        return schema

    def _request_object(self, message: Descriptor, fields: list[FieldDescriptor]) -> Schema:
        """Keys by json_name (`properties`) or proto name (`patternProperties`, an alias that
        generated clients do not need); null is "not set"; at most one member of a oneof."""
        schema: Schema = {
            "type": "object",
            "properties": {f.json_name: self.property_schema(f, request=True) for f in fields},
        }
        aliases = {  # the same schema, documented once (under the JSON name)
            f"^{f.name}$": _undocumented(schema["properties"][f.json_name])
            for f in fields
            if f.name != f.json_name
        }
        if aliases:
            schema["patternProperties"] = aliases
        rules: list[Schema] = []
        required = [f for f in fields if _REQUIRED in field_behaviors(f)]
        for field in required:
            if field.name == field.json_name:
                schema.setdefault("required", []).append(field.name)
            else:
                rules.append(
                    {"anyOf": [{"required": [field.json_name]}, {"required": [field.name]}]}
                )
        twice = [{"required": [f.json_name, f.name]} for f in fields if f.name != f.json_name]
        small, large = _oneof_groups(message, fields)
        conflicts = twice + [
            {"required": [x, y], "properties": {x: _NOT_NULL, y: _NOT_NULL}}
            for a, b in _pairs(small)
            for x in _names(a)
            for y in _names(b)
        ]
        if conflicts:
            rules.append({"not": {"anyOf": conflicts}})
        rules.extend(_at_most_one([_set_in_request(f) for f in group]) for group in large)
        if rules:
            schema["allOf"] = rules
        if not self.options.ignore_unknown_fields:
            # Unknown keys are a 400. `additionalProperties` says so exactly here (every
            # property is declared in this object, none in `allOf`), and more tools read it
            # than `unevaluatedProperties` (hypothesis-jsonschema, so schemathesis, too).
            schema["additionalProperties"] = False
        return schema


_NOT_NULL: Final = {"not": NULL}


def _undocumented(schema: Schema) -> Schema:
    return {key: value for key, value in schema.items() if key != "description"}


def _names(field: FieldDescriptor) -> list[str]:
    return list(dict.fromkeys((field.json_name, field.name)))


# A oneof of more members than this is written in a linear form (`_at_most_one`), not as the
# list of forbidden pairs, which grows with the square of its size (googleads' MutateOperation,
# 100+ members: 1.7 MB of pairs in its request view alone).
PAIRS_UP_TO: Final = 4


def _oneof_groups(
    message: Descriptor, fields: list[FieldDescriptor]
) -> tuple[list[list[FieldDescriptor]], list[list[FieldDescriptor]]]:
    """The members (among `fields`) of each real oneof (not a proto3 `optional`'s synthetic
    one) with two or more: those written as pairs, and the larger ones."""
    present = set(fields)
    small: list[list[FieldDescriptor]] = []
    large: list[list[FieldDescriptor]] = []
    for oneof in message.oneofs:
        members = [f for f in oneof.fields if f in present]
        if len(oneof.fields) < 2 or len(members) < 2:
            continue
        (small if len(members) <= PAIRS_UP_TO else large).append(members)
    return small, large


def _pairs(groups: list[list[FieldDescriptor]]) -> list[tuple[FieldDescriptor, FieldDescriptor]]:
    return [(a, b) for group in groups for i, a in enumerate(group) for b in group[i + 1 :]]


def _at_most_one(set_members: list[Schema]) -> Schema:
    """Valid when at most one of the schemas is: exactly one of them, or none (`oneOf` counts
    the valid subschemas, and the last is valid only when none of the others is)."""
    return {"oneOf": [*set_members, {"not": {"anyOf": set_members}}]}


def _set_in_request(field: FieldDescriptor) -> Schema:
    """The field is given, under either of its names, and not null (null is "not set")."""
    given = [{"required": [n], "properties": {n: _NOT_NULL}} for n in _names(field)]
    return given[0] if len(given) == 1 else {"anyOf": given}


def _null_is_value(field: FieldDescriptor) -> bool:
    """As jsoncodec.read: null sets a google.protobuf.Value or NullValue field."""
    if field.message_type is not None:
        return field.message_type.full_name == "google.protobuf.Value"
    return field.enum_type is not None and field.enum_type.full_name == "google.protobuf.NullValue"


def well_known_schema(message: Descriptor, *, request: bool) -> Schema | None:
    """The JSON form of a well-known type with one of its own; None for other messages."""
    full_name = message.full_name
    if full_name == "google.protobuf.Timestamp":
        pattern = patterns.TIMESTAMP_READ if request else patterns.TIMESTAMP_WRITE
        return {"type": "string", "format": "date-time", "pattern": pattern}
    if full_name == "google.protobuf.Duration":
        pattern = patterns.DURATION_READ if request else patterns.DURATION_WRITE
        return {"type": "string", "pattern": pattern}
    if full_name == "google.protobuf.FieldMask":
        pattern = patterns.FIELD_MASK_READ if request else patterns.FIELD_MASK_WRITE
        return {"type": "string", "pattern": pattern}
    if full_name == "google.protobuf.Struct":
        return {"type": "object", "additionalProperties": _ANY_JSON}
    if full_name == "google.protobuf.Value":
        return dict(_ANY_JSON)
    if full_name == "google.protobuf.ListValue":
        return {"type": "array", "items": _ANY_JSON}
    if full_name == "google.protobuf.Any":
        return {
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": True,
        }
    return None
