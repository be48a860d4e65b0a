"""Path templates as OpenAPI paths, and the path and query parameters of an operation
(docs/http-transcoding.md §2, §3; the naming scheme is docs/openapi.md, "Path parameters")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from protoc_gen_restmon.runtime.jsoncodec.options import WRAPPERS_FILE
from protoc_gen_restmon.runtime.openapi import patterns
from protoc_gen_restmon.runtime.openapi.naming import UniqueNames, parameter_name, singular
from protoc_gen_restmon.runtime.openapi.scalars import Schema, scalar_schema
from protoc_gen_restmon.runtime.openapi.schemas import (
    Schemas,
    field_behaviors,
    is_map,
    well_known_schema,
)
from protoc_gen_restmon.runtime.specs import Binding, PathVariable, SegmentKind

# A query value of these types is one text (transcode/values.py WELL_KNOWN_LEAVES).
_TEXT_WELL_KNOWN: Final = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)
MAX_QUERY_DEPTH: Final = 8  # nested messages listed as dotted query parameters, at most


@dataclass(frozen=True, slots=True)
class PathParameter:
    name: str
    variable: PathVariable | None  # None for a `*` outside any variable
    index: int  # which wildcard of the variable (0-based)
    deep: bool  # `**`


@dataclass(frozen=True, slots=True)
class OpenApiPath:
    path: str  # "/v1/shelves/{shelf}/books/{book}:cancel"
    parameters: tuple[PathParameter, ...]
    shape: tuple[str, ...]  # literals and `*` / `**`, the verb last: same shape, same names


def shape_of(binding: Binding) -> tuple[str, ...]:
    parts = [
        segment.value if segment.kind is SegmentKind.LITERAL else segment.kind.value
        for segment in binding.segments
    ]
    return (*parts, f":{binding.verb}")


class PathNamer:
    """OpenAPI paths for bindings; bindings of one shape get one path (one path item)."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, ...], list[str]] = {}

    def path(self, binding: Binding) -> OpenApiPath:
        shape = shape_of(binding)
        wildcards = _wildcards(binding)
        names = self._names.get(shape)
        if names is None:
            names = self._names[shape] = _fresh_names(binding, wildcards)
        parameters = tuple(
            PathParameter(name, variable, index, deep)
            for name, (variable, index, deep, _) in zip(names, wildcards, strict=True)
        )
        return OpenApiPath(_render(binding, names), parameters, shape)


# (variable, index in the variable, deep, the literal before it inside the variable or "")
_Wildcard = tuple[PathVariable | None, int, bool, str]


def _wildcards(binding: Binding) -> list[_Wildcard]:
    found: list[_Wildcard] = []
    for position, segment in enumerate(binding.segments):
        if segment.kind is SegmentKind.LITERAL:
            continue
        variable = next((v for v in binding.variables if v.start <= position < v.end), None)
        index = sum(1 for v, *_ in found if v is variable and variable is not None)
        before = binding.segments[position - 1] if position else None
        inside = variable is None or position - 1 >= variable.start
        literal = before.value if before and before.kind is SegmentKind.LITERAL and inside else ""
        found.append((variable, index, segment.kind is SegmentKind.DEEP_WILDCARD, literal))
    return found


def _fresh_names(binding: Binding, wildcards: list[_Wildcard]) -> list[str]:
    unique = UniqueNames()
    names = []
    for variable, _, _, literal in wildcards:
        if literal:
            base = singular(literal)
        elif variable is not None:
            base = str(variable.field)
        else:
            base = "segment"
        names.append(unique.take(parameter_name(base)))
    return names


def _render(binding: Binding, names: list[str]) -> str:
    parts: list[str] = []
    wildcard = 0
    for segment in binding.segments:
        if segment.kind is SegmentKind.LITERAL:
            parts.append(segment.value)
        else:
            parts.append("{" + names[wildcard] + "}")
            wildcard += 1
    path = "/" + "/".join(parts)
    return f"{path}:{binding.verb}" if binding.verb else path


def path_parameters(
    binding: Binding, path: OpenApiPath, request: Descriptor, schemas: Schemas
) -> list[dict[str, Any]]:
    result = []
    for parameter in path.parameters:
        variable = parameter.variable
        schema: Schema
        if parameter.deep:
            schema = {"type": "string"}
            description = (
                "Matches any number of path segments (`**`), slashes included; OpenAPI cannot "
                "express that, so a client that percent-encodes `/` as `%2F` sends one segment."
            )
        elif (
            variable is not None
            and variable.end - variable.start == 1
            and not _in_template(binding, variable)
        ):
            field = _field_at(request, variable.field.proto)
            schema = text_schema(field, schemas) if field is not None else {"type": "string"}
            schema = _one_segment(schema)
            description = ""
        else:
            schema = {"type": "string", "pattern": patterns.ONE_SEGMENT}
            description = (
                _segment_description(binding, path, variable)
                if variable is not None
                else "Any one path segment (not bound)."
            )
        entry: dict[str, Any] = {"name": parameter.name, "in": "path", "required": True}
        if variable is not None and not description:
            text = schemas.comments.get(_full_field_name(request, variable.field.proto))
            description = text
        if description:
            entry["description"] = description
        entry["schema"] = schema
        if variable is not None:
            entry["x-restmon-field"] = str(variable.field)
        result.append(entry)
    return result


def _segment_description(binding: Binding, path: OpenApiPath, variable: PathVariable) -> str:
    """`One segment of `name`, `shelves/{shelf}/books/{book}`.`"""
    names = iter(p.name for p in path.parameters if p.variable is variable)
    parts = [
        segment.value if segment.kind is SegmentKind.LITERAL else "{" + next(names) + "}"
        for segment in binding.segments[variable.start : variable.end]
    ]
    return f"One segment of `{variable.field}`, `{'/'.join(parts)}`."


def _in_template(binding: Binding, variable: PathVariable) -> bool:
    """The variable was written with its own template (`{x=*}` counts as plain `{x}`)."""
    return variable.reserved_expansion


def _one_segment(schema: Schema) -> Schema:
    if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
        return schema | {"pattern": patterns.ONE_SEGMENT}
    return schema


def variables_extension(binding: Binding, path: OpenApiPath) -> list[dict[str, Any]]:
    """`x-restmon-variables`: each template variable, its field path and its parameters."""
    result = []
    for variable in binding.variables:
        own = [p.name for p in path.parameters if p.variable is variable]
        template = "/".join(
            segment.value if segment.kind is SegmentKind.LITERAL else segment.kind.value
            for segment in binding.segments[variable.start : variable.end]
        )
        result.append(
            {
                "field": str(variable.field),
                "jsonField": ".".join(variable.field.json),
                "template": template,
                "parameters": own,
            }
        )
    return result


def _field_at(message: Descriptor, proto_path: tuple[str, ...]) -> FieldDescriptor | None:
    current: Descriptor | None = message
    field = None
    for name in proto_path:
        if current is None:
            return None
        field = current.fields_by_name.get(name)
        if field is None:
            return None
        current = field.message_type
    return field


def _full_field_name(message: Descriptor, proto_path: tuple[str, ...]) -> str:
    field = _field_at(message, proto_path)
    return field.full_name if field is not None else ""


# --- query parameters ----------------------------------------------------------------------------


def text_schema(field: FieldDescriptor, schemas: Schemas) -> Schema:
    """One value of a leaf as URL text (docs/http-transcoding.md §3, "Values")."""
    message = field.message_type
    if message is not None:
        if message.file.name == WRAPPERS_FILE:
            return text_schema(message.fields_by_name["value"], schemas)
        known = well_known_schema(message, request=True)
        assert known is not None, message.full_name
        return known
    if field.enum_type is not None:
        names: Schema = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        if schemas.options.ignore_unknown_fields:
            names = {"type": "string"}
        return {"anyOf": [names, {"type": "integer", "format": "int32"}]}
    return scalar_schema(field, request=True, text=True)


def query_parameters(
    binding: Binding, request: Descriptor, schemas: Schemas
) -> list[dict[str, Any]]:
    """Every field neither the path nor the body binds, as the gateway reads it from the query
    (none with `body: "*"`)."""
    if binding.body is not None and binding.body.proto == ("*",):
        return []
    bound = {variable.field.proto for variable in binding.variables}
    skip_top = {binding.body.proto[0]} if binding.body is not None else set()
    result: list[dict[str, Any]] = []
    _collect(request, (), (), bound, skip_top, schemas, result, (request.full_name,))
    return result


def _collect(
    message: Descriptor,
    proto: tuple[str, ...],
    json: tuple[str, ...],
    bound: set[tuple[str, ...]],
    skip_top: set[str],
    schemas: Schemas,
    out: list[dict[str, Any]],
    seen: tuple[str, ...],
) -> None:
    use_proto = schemas.options.use_proto_names
    for field in message.fields:
        path = (*proto, field.name)
        json_path = (*json, field.json_name)
        if path in bound or (not proto and field.name in skip_top):
            continue
        name = ".".join(path if use_proto else json_path)
        target = field.message_type
        if is_map(field):
            parameter = _map_parameter(field, name, schemas)
            if parameter is not None:
                out.append(parameter | _notes(field, path, json_path, schemas))
            continue
        if target is not None and not _is_leaf(target):
            if field.is_repeated or target.full_name.startswith("google.protobuf."):
                continue  # not expressible in a query (§3): repeated messages, Struct, Any, …
            if target.full_name in seen or len(seen) > MAX_QUERY_DEPTH:
                continue  # recursion: the type is already on the way here
            _collect(target, path, json_path, bound, set(), schemas, out, (*seen, target.full_name))
            continue
        schema = text_schema(field, schemas)
        entry: dict[str, Any] = {"name": name, "in": "query"}
        if _required(field):
            entry["required"] = True
        if field.is_repeated:
            entry |= {
                "schema": {"type": "array", "items": schema},
                "style": "form",
                "explode": True,
            }
        else:
            entry["schema"] = schema
        out.append(entry | _notes(field, path, json_path, schemas))


def _is_leaf(message: Descriptor) -> bool:
    return message.full_name in _TEXT_WELL_KNOWN or message.file.name == WRAPPERS_FILE


def _required(field: FieldDescriptor) -> bool:
    return field_behavior_pb2.REQUIRED in field_behaviors(field)


def _map_parameter(field: FieldDescriptor, name: str, schemas: Schemas) -> dict[str, Any] | None:
    entry = field.message_type
    assert entry is not None
    key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
    if value.message_type is not None and not _is_leaf(value.message_type):
        return None  # map values that are messages cannot be given in the query (§3)
    schema: Schema = {"type": "object", "additionalProperties": text_schema(value, schemas)}
    keys = _key_pattern(key, schemas)
    if keys:
        schema["propertyNames"] = keys
    return {"name": name, "in": "query", "style": "deepObject", "explode": True, "schema": schema}


def _key_pattern(key: FieldDescriptor, schemas: Schemas) -> Schema:
    from protoc_gen_restmon.runtime.openapi.scalars import map_key_schema

    return map_key_schema(key, request=True)


def _notes(
    field: FieldDescriptor,
    proto: tuple[str, ...],
    json: tuple[str, ...],
    schemas: Schemas,
) -> dict[str, Any]:
    notes: dict[str, Any] = {}
    text = schemas.comments.get(field.full_name)
    other = ".".join(proto if not schemas.options.use_proto_names else json)
    alias = f"Also accepted as `{other}`." if proto != json else ""
    description = "\n\n".join(part for part in (text, alias) if part)
    if description:
        notes["description"] = description
    if field.GetOptions().deprecated:
        notes["deprecated"] = True
    return notes
