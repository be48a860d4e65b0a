"""(body, path variables, query string) -> the request message of one binding; pure, no I/O.

docs/http-transcoding.md §3. The body is decoded first, then the path variables are set (the URL
wins a collision), then the query parameters fill the fields bound neither by the path nor by the
body.
Every bad request raises `RpcError`; nothing else escapes for any input.

Choices where the spec is silent:
- A body with no `Content-Type` is read as JSON. A charset other than UTF-8 is a 415.
- A body over `max_body_bytes` is `RESOURCE_EXHAUSTED` with HTTP 413 (what gRPC itself answers
  for a message over the receive limit), checked before anything else.
- `google.api.HttpBody` (the body field, or the whole request for `body: "*"`) takes the raw
  bytes and the content type as they came, whatever the content type.
- A query parameter naming a field bound by the path or the body is refused like an unknown
  one (400, or ignored with `ignore_unknown_query`).
- A query parameter may not go into a well-known type (`publish_time.seconds`): those are values.
- Google's system parameters (`$alt`, `$fields`, `key` where the request has no `key` field, …)
  are dropped before anything else looks at the query (`system.is_system_parameter`).
- PATCH: the mask is filled only when the mask field does not appear in the query at all; an
  explicit `?update_mask=` stays empty. The mask field is the top-level FieldMask named
  `update_mask`, or else the only top-level FieldMask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from google.protobuf.message import Message

from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from protoc_gen_restmon.runtime.jsoncodec.read import JsonSyntaxError, load_json, merge_json
from protoc_gen_restmon.runtime.specs import Binding, FieldPath
from protoc_gen_restmon.runtime.status import Code, RpcError
from protoc_gen_restmon.runtime.transcode.system import is_system_parameter
from protoc_gen_restmon.runtime.transcode.values import (
    FIELD_MASK,
    add_value,
    invalid,
    is_leaf,
    is_map,
    map_entry,
    parse_query,
    set_map_entry,
    set_value,
    type_name,
)

if TYPE_CHECKING:
    from protoc_gen_restmon.runtime.transcode.values import Field, MessageDescriptor

M = TypeVar("M", bound=Message)

BODY_ALL = ("*",)
HTTP_BODY = "google.api.HttpBody"
# Where a bad value came from, in its FieldValueError: `query parameter "page.size": …`.
QUERY_SOURCE = "query parameter"
PATH_SOURCE = "path variable"
BODY_SOURCE = "body field"
# `application/json`, or a structured syntax suffix: `application/merge-patch+json` (RFC 6839).
JSON_MEDIA_TYPE = re.compile(r"application/(?:[a-z0-9!#$&^_.+-]+\+)?json")


@dataclass(frozen=True, slots=True)
class TranscodeOptions:
    ignore_unknown_query: bool = False  # drop unknown query parameters instead of a 400
    max_body_bytes: int = 4 * 1024 * 1024  # larger bodies are a 413


DEFAULT_OPTIONS = TranscodeOptions()
# Unknown JSON body fields are JsonOptions.ignore_unknown_fields: the JSON mapping's own switch.
DEFAULT_JSON = JsonOptions()


def build_request(
    cls: type[M],
    binding: Binding,
    params: tuple[tuple[FieldPath, str], ...],
    query: str | bytes,
    body: bytes,
    content_type: str | None,
    options: TranscodeOptions = DEFAULT_OPTIONS,
    json_options: JsonOptions = DEFAULT_JSON,
) -> M:
    """A new `cls` filled from the request; `params` are the decoded path variable values.

    For `GET /v1/{book=shelves/*/books/*}/chapters/{chapter_number}` with the path variables
    `(book, "shelves/s/books/b"), (chapter_number, "3")` and the query `fields=x`, this is
    `GetChapterRequest(book="shelves/s/books/b", chapter_number=3)`, or a 400 naming `fields`.
    """
    message = cls()
    if not body and not query and binding.body is None:  # what most GETs are: path variables
        set_path_params(message, params)
        return message
    document = decode_body(message, binding, body, content_type, options, json_options)
    set_path_params(message, params)
    given = set_query_params(message, binding, parse_query(query), options)
    if isinstance(document, dict):
        fill_update_mask(message, binding, document, given)
    return message


# --- Body ---


def decode_body(
    message: Message,
    binding: Binding,
    body: bytes,
    content_type: str | None,
    options: TranscodeOptions,
    json_options: JsonOptions = DEFAULT_JSON,
) -> object:
    """Fill `message` from the body; returns the parsed JSON document, or None."""
    check_body_size(body, options.max_body_bytes)
    if binding.body is None:
        if body:
            why = f"{binding.http_method} {binding.template} takes no request body"
            raise RpcError(Code.INVALID_ARGUMENT, f"{why}, got {len(body)} bytes")
        return None
    target = body_field(message.DESCRIPTOR, binding.body)
    target_type = message.DESCRIPTOR if target is None else target.message_type
    if target_type is not None and target_type.full_name == HTTP_BODY:
        fill_http_body(
            message if target is None else getattr(message, target.name), body, content_type
        )
        return None
    if not body:
        return None
    check_json_content_type(content_type)
    document = read_json(body)
    parse_json(message, target, document, json_options)
    return document


def check_body_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        why = f"request body of {len(body)} bytes is over the limit of {limit} bytes"
        raise RpcError(Code.RESOURCE_EXHAUSTED, why, http_status=413)


def body_field(descriptor: MessageDescriptor, path: FieldPath) -> Field | None:
    """The top-level field `body` names; None for `body: "*"`."""
    if path.proto == BODY_ALL:
        return None
    found = descriptor.fields_by_name.get(path.proto[0]) if len(path.proto) == 1 else None
    if found is None:
        why = f'binding body "{path}" is not a top-level field of {descriptor.full_name}'
        raise RpcError(Code.INTERNAL, why)
    return found


def fill_http_body(target: Message, body: bytes, content_type: str | None) -> None:
    """google.api.HttpBody: the bytes and the content type as they came."""
    if not body and content_type is None:
        return
    try:
        target.content_type = content_type or ""  # type: ignore[attr-defined]
    except ValueError as exc:  # not encodable as UTF-8
        raise RpcError(Code.INVALID_ARGUMENT, f"invalid content type: {exc}") from exc
    target.data = body  # type: ignore[attr-defined]


def check_json_content_type(content_type: str | None) -> None:
    """`application/json` or `application/*+json`, charset UTF-8 if any; absent counts as JSON."""
    if not content_type:
        return
    media, *parameters = content_type.split(";")
    if JSON_MEDIA_TYPE.fullmatch(media.strip().lower()) and all(map(_utf8, parameters)):
        return
    why = f'unsupported content type "{content_type}": the request body must be JSON'
    raise RpcError(Code.INVALID_ARGUMENT, f"{why} (application/json, UTF-8)", http_status=415)


def _utf8(parameter: str) -> bool:
    name, _, value = parameter.partition("=")
    if name.strip().lower() != "charset":
        return True
    return value.strip().strip('"').lower() in ("utf-8", "utf8")


def read_json(body: bytes) -> object:
    """The body as strict JSON (`jsoncodec.read.load_json`: the codec's own loader)."""
    try:
        return load_json(body)
    except JsonSyntaxError as exc:
        raise RpcError(Code.INVALID_ARGUMENT, f"request body is not valid JSON: {exc}") from None


def parse_json(
    message: Message, target: Field | None, document: object, options: JsonOptions = DEFAULT_JSON
) -> None:
    """The proto3 JSON mapping into the whole message (`*`) or into one of its fields.

    The codec's parser (`jsoncodec.read.merge_json`) does the work; a bad value is a
    FieldValueError naming its path from the top of the request, as a query parameter's is:
    `body field "shelf.location.floor": invalid int32 value "two": …`.
    """
    wants_object = target is None or (_is_plain_message(target) and document is not None)
    if wants_object and not isinstance(document, dict):
        raise RpcError(Code.INVALID_ARGUMENT, "request body must be a JSON object")
    # A field's value is parsed as the value of that one key of the whole request.
    wrapped: Any = {target.json_name: document} if target is not None else document
    merge_json(message, wrapped, options, source=BODY_SOURCE)


# --- Path variables ---


def set_path_params(message: Message, params: tuple[tuple[FieldPath, str], ...]) -> None:
    for path, text in params:
        fields = _PATH_FIELDS.get((message.DESCRIPTOR, path.proto))
        if fields is None:
            fields = path_fields(message, path)
        parent = message
        for through in fields[:-1]:
            parent = getattr(parent, through.name)
        set_value(parent, fields[-1], text, PATH_SOURCE, path.proto)


def path_fields(message: Message, path: FieldPath) -> tuple[Field, ...]:
    """The fields a path variable leads through to its singular scalar field, found once per
    message type and path (generated bindings name only such paths; others are a 500)."""
    where = f'path variable "{path}"'
    try:
        steps = walk(message, path.proto, where)
    except UnknownFieldError as exc:
        raise RpcError(Code.INTERNAL, f"{where}: {exc}") from exc
    last = steps[-1]
    if last.field.is_repeated or not is_leaf(last.field):
        raise RpcError(Code.INTERNAL, f"{where}: not a singular scalar field")
    fields = _PATH_FIELDS[message.DESCRIPTOR, path.proto] = tuple(step.field for step in steps)
    return fields


_PATH_FIELDS: dict[tuple[MessageDescriptor, tuple[str, ...]], tuple[Field, ...]] = {}


# --- Query parameters ---


class Step(NamedTuple):
    """One field of a dotted path, with the message that holds it."""

    parent: Message
    field: Field


class UnknownFieldError(Exception):
    """A name in a dotted path that is no field of its message."""


class RefusedError(Exception):
    """A query parameter the binding does not take (unknown, or bound by the path or body)."""


@dataclass(slots=True)
class QueryState:
    """What the query parameters have set so far (private to one `set_query_params` call)."""

    binding: Binding
    singular: set[tuple[str, ...]] = field(default_factory=set)  # proto paths set once
    given: set[str] = field(default_factory=set)  # top-level proto names the query touched


def set_query_params(
    message: Message,
    binding: Binding,
    params: tuple[tuple[str, str], ...],
    options: TranscodeOptions,
) -> frozenset[str]:
    """Set every parameter but the system ones; returns the top-level proto names set."""
    if not params:
        return frozenset()
    state = QueryState(binding)
    for key, value in params:
        if is_system_parameter(key, message.DESCRIPTOR):
            continue
        try:
            set_query_param(message, state, key, value)
        except RefusedError as exc:
            if not options.ignore_unknown_query:
                raise RpcError(Code.INVALID_ARGUMENT, str(exc)) from exc
    return frozenset(state.given)


def set_query_param(message: Message, state: QueryState, key: str, value: str) -> None:
    where = f'query parameter "{key}"'
    names, map_key = split_key(key)
    steps = resolve_query_key(message, state.binding, names, where)
    check_oneofs(steps, where)
    last = steps[-1]
    proto_path = tuple(step.field.name for step in steps)
    state.given.add(proto_path[0])
    if is_map(last.field) or map_key is not None:
        set_map_param(last, map_key, value, where, (*names, f"[{map_key}]"))
    elif not is_leaf(last.field):
        why = f"a {type_name(last.field)} is not one value: give its fields, e.g. {key}.<field>"
        raise invalid(where, why)
    elif last.field.is_repeated:
        add_value(last.parent, last.field, value, QUERY_SOURCE, names)
    elif proto_path in state.singular:
        raise invalid(where, f'field "{".".join(proto_path)}" given twice')
    else:
        state.singular.add(proto_path)
        set_value(last.parent, last.field, value, QUERY_SOURCE, names)


def split_key(key: str) -> tuple[tuple[str, ...], str | None]:
    """`labels[env]` -> (("labels",), "env"); `page.pageSize` -> (("page", "pageSize"), None)."""
    name, bracket, rest = key.partition("[")
    if bracket and rest.endswith("]"):
        return tuple(name.split(".")), rest[:-1]
    return tuple(key.split(".")), None


def resolve_query_key(
    message: Message, binding: Binding, names: tuple[str, ...], where: str
) -> tuple[Step, ...]:
    """The fields `names` lead to, refusing those the path or the body already binds."""
    if binding.body is not None and binding.body.proto == BODY_ALL:
        raise RefusedError(
            f"{where} is not allowed: every field not in the URL path comes from the body"
        )
    try:
        steps = walk(message, names, where, stop_at=_body_name(binding))
    except UnknownFieldError as exc:
        raise RefusedError(f"unknown {where}: {exc}") from exc
    proto_path = tuple(step.field.name for step in steps)
    if binding.body is not None and proto_path[0] == binding.body.proto[0]:
        raise RefusedError(f'{where} is not allowed: field "{proto_path[0]}" comes from the body')
    if proto_path in {variable.field.proto for variable in binding.variables}:
        raise RefusedError(
            f'{where} is not allowed: field "{".".join(proto_path)}" is in the URL path'
        )
    return steps


def _body_name(binding: Binding) -> str | None:
    return None if binding.body is None else binding.body.proto[0]


def walk(
    message: Message, names: tuple[str, ...], where: str, stop_at: str | None = None
) -> tuple[Step, ...]:
    """Follow `names` (proto or JSON names) through singular message fields.

    Intermediate messages are reached with getattr and exist only once a value is written.
    The walk stops early at the top-level field `stop_at` (the body field).
    """
    steps: list[Step] = []
    parent = message
    for depth, name in enumerate(names):
        found = field_named(parent.DESCRIPTOR, name)
        if found is None:
            raise UnknownFieldError(f'{parent.DESCRIPTOR.full_name} has no field "{name}"')
        steps.append(Step(parent, found))
        if depth == len(names) - 1 or (depth == 0 and found.name == stop_at):
            break
        check_traversable(found, where)
        parent = getattr(parent, found.name)
    return tuple(steps)


def check_traversable(through: Field, where: str) -> None:
    """A dotted path may only go through singular, non-map, non-well-known message fields."""
    message_type = through.message_type
    if message_type is None:
        raise invalid(where, f'"{through.name}" is not a message field, it has no fields')
    if is_map(through):
        raise invalid(where, f'"{through.name}" is a map: write {through.name}[KEY]=VALUE')
    if through.is_repeated:
        raise invalid(where, f'"{through.name}" is a repeated field: a path cannot go through it')
    if is_leaf(through):
        why = f'"{through.name}" is a {message_type.full_name}: give it as one value'
        raise invalid(where, why)


def field_named(descriptor: MessageDescriptor, name: str) -> Field | None:
    """The field whose proto name, or else JSON name, is `name`."""
    found = descriptor.fields_by_name.get(name)
    if found is not None:
        return found
    return next((f for f in descriptor.fields if f.json_name == name), None)


def check_oneofs(steps: tuple[Step, ...], where: str) -> None:
    """Two members of one oneof are a 400, wherever the first one came from."""
    for parent, member in steps:
        oneof = member.containing_oneof
        current = parent.WhichOneof(oneof.name) if oneof is not None else None
        if oneof is not None and current not in (None, member.name):
            why = f'"{current}" and "{member.name}" are members of oneof "{oneof.name}"'
            raise invalid(where, f"{why}: give only one")


def set_map_param(
    last: Step, map_key: str | None, value: str, where: str, path: tuple[str, ...]
) -> None:
    """`labels[env]=prod`; `path` is ("labels", "[env]")."""
    name = last.field.name
    if map_key is None:
        raise invalid(where, f'"{name}" is a map: write {name}[KEY]=VALUE')
    if not is_map(last.field):
        raise invalid(where, f'"{name}" is not a map field: [KEY] is only for maps')
    value_field = map_entry(last.field).fields_by_name["value"]
    if not is_leaf(value_field):
        why = f"map values of type {type_name(value_field)} cannot be given as query parameters"
        raise invalid(where, why)
    set_map_entry(last.parent, last.field, map_key, value, QUERY_SOURCE, path)


# --- PATCH: update_mask from the body's keys ---


def fill_update_mask(
    message: Message, binding: Binding, document: Mapping[str, object], given: frozenset[str]
) -> None:
    """grpc-gateway's convenience: an absent update mask lists the JSON keys of the body."""
    if binding.http_method != "PATCH" or binding.body is None or binding.body.proto == BODY_ALL:
        return
    mask_field = update_mask_field(message.DESCRIPTOR)
    target = message.DESCRIPTOR.fields_by_name[binding.body.proto[0]]
    if mask_field is None or mask_field.name in (target.name, *given):
        return
    if target.message_type is None or not _descends(target, document):
        return
    paths = mask_paths(target.message_type, document, ())
    if paths:  # even an empty extend() would mark the mask present
        getattr(message, mask_field.name).paths.extend(paths)


def update_mask_field(descriptor: MessageDescriptor) -> Field | None:
    """The top-level FieldMask named `update_mask`, or else the only top-level FieldMask."""
    masks = [
        f
        for f in descriptor.fields
        if f.message_type is not None
        and f.message_type.full_name == FIELD_MASK
        and not f.is_repeated
    ]
    named = [f for f in masks if f.name == "update_mask"]
    return named[0] if named else (masks[0] if len(masks) == 1 else None)


def mask_paths(
    descriptor: MessageDescriptor, document: Mapping[str, object], prefix: tuple[str, ...]
) -> list[str]:
    """`{"title": "x", "location": {"floor": 2}}` -> ["title", "location.floor"] (proto names).

    Objects of plain message fields are followed; maps, well-known types, arrays, scalars and
    empty objects end a path. Keys that are no field (ignored unknown fields) are skipped.
    """
    paths: list[str] = []
    for key, value in document.items():
        found = field_named(descriptor, key)
        if found is None:
            continue
        path = (*prefix, found.name)
        if _descends(found, value) and found.message_type is not None:
            paths.extend(mask_paths(found.message_type, value, path))  # type: ignore[arg-type]
        else:
            paths.append(".".join(path))
    return paths


def _descends(through: Field, value: object) -> bool:
    return _is_plain_message(through) and isinstance(value, dict) and bool(value)


def _is_plain_message(member: Field) -> bool:
    """A singular message field whose JSON form is an object of its fields (no well-known type)."""
    message_type = member.message_type
    return (
        message_type is not None
        and not member.is_repeated
        and not message_type.full_name.startswith("google.protobuf.")
    )
