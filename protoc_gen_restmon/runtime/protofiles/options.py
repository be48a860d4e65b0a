"""Descriptor options (standard and custom) rendered as `.proto` option syntax.

Custom options are extensions of the `google.protobuf.*Options` messages. protoc keeps those it does
not link as unknown fields, so the options are re-read through a private descriptor pool built from
the file and its imports: every extension any of them declares is then a known field, printed in
the generic form `(full.name) = value` (messages in text-format aggregate syntax `{ ... }`). The
googleapis extensions are imported too, for files printed without their imports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from google.api import (  # noqa: F401  (registers the google.api option extensions)
    annotations_pb2,
    client_pb2,
    field_behavior_pb2,
    field_info_pb2,
    resource_pb2,
    routing_pb2,
)
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    unknown_fields,
)
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message
from google.protobuf.text_encoding import CEscape

_DESCRIPTOR_PROTO = "google/protobuf/descriptor.proto"
_SKIPPED = {"uninterpreted_option", "map_entry"}


class UnsupportedProtoError(ValueError):
    """A file this printer cannot render faithfully (editions files, unresolvable options)."""


def _dependency_order(
    files: Sequence[descriptor_pb2.FileDescriptorProto],
) -> list[descriptor_pb2.FileDescriptorProto]:
    by_name = {f.name: f for f in files}
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in by_name:
            return
        seen.add(name)
        for dependency in by_name[name].dependency:
            visit(dependency)
        ordered.append(by_name[name])

    for file in files:
        visit(file.name)
    return ordered


class OptionRenderer:
    """Renders the options of descriptors taken from one set of files (a file and its imports)."""

    def __init__(self, files: Sequence[descriptor_pb2.FileDescriptorProto]) -> None:
        self._pool = descriptor_pool.DescriptorPool()
        names = {f.name for f in files}
        if _DESCRIPTOR_PROTO not in names:
            base = descriptor_pb2.FileDescriptorProto.FromString(
                descriptor_pb2.DESCRIPTOR.serialized_pb
            )
            self._pool.Add(base)
        for file in _dependency_order(files):
            try:
                self._pool.Add(file)
            except (TypeError, ValueError):  # a missing import: its options use the default pool
                continue

    def _parse(self, options: Message) -> Message:
        try:
            descriptor = self._pool.FindMessageTypeByName(options.DESCRIPTOR.full_name)
        except KeyError:
            return options
        parsed = message_factory.GetMessageClass(descriptor).FromString(options.SerializeToString())
        unknown = unknown_fields.UnknownFieldSet(parsed)
        if len(unknown):
            numbers = sorted({unknown[i].field_number for i in range(len(unknown))})
            raise UnsupportedProtoError(
                f"{options.DESCRIPTOR.name} fields {numbers} are unknown: pass the imported files"
            )
        return parsed

    def items(self, options: Message, multiline: bool = False) -> list[tuple[str, str]]:
        return [(name, value) for _, name, value in self.numbered(options, multiline)]

    def numbered(self, options: Message, multiline: bool = False) -> list[tuple[int, str, str]]:
        """(name, value) of every option set, a repeated option once per element.

        In the order of the serialized options (protoc writes custom options in source order), so
        the printed file compiles to the same bytes.
        """
        result: list[tuple[int, str, str]] = []
        order = wire_order(options.SerializeToString())
        fields = sorted(
            self._parse(options).ListFields(),
            key=lambda item: order.get(item[0].number, len(order)),
        )
        for field, value in fields:
            if field.name in _SKIPPED and not field.is_extension:
                continue
            name = f"({field.full_name})" if field.is_extension else field.name
            values = list(value) if field.is_repeated else [value]
            result.extend((field.number, name, render_value(field, v, multiline)) for v in values)
        return result


def escape(text: str) -> str:
    """A string's C escapes for a quoted `.proto` literal (UTF-8 kept as is)."""
    escaper: Any = CEscape  # the stubs say bytes only; str is accepted and kept as text
    result: str = escaper(text, True)
    return result


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return value, at


def wire_order(data: bytes) -> dict[int, int]:
    """Field number -> rank of its first occurrence in serialized `data` (top level only)."""
    order: dict[int, int] = {}
    at, depth = 0, 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        if depth == 0:
            order.setdefault(number, len(order))
        if wire == 0:
            _, at = _varint(data, at)
        elif wire == 1:
            at += 8
        elif wire == 2:
            size, at = _varint(data, at)
            at += size
        elif wire == 5:
            at += 4
        else:  # 3 and 4: a group starts or ends
            depth += 1 if wire == 3 else -1
    return order


def render_float(value: float, single: bool) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(type_checkers.ToShortestFloat(value) if single else value)


def render_value(field: FieldDescriptor, value: object, multiline: bool = False) -> str:
    """`value` of `field` as a `.proto` option value (aggregate syntax for messages)."""
    kind = field.type
    if kind in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        assert isinstance(value, Message)
        if not multiline:
            body = text_format.MessageToString(value, as_one_line=True, as_utf8=True)
            return f"{{ {body} }}" if body else "{}"
        body = text_format.MessageToString(value, indent=2, as_utf8=True)
        return "{\n" + body + "}" if body else "{}"
    if kind == FieldDescriptor.TYPE_ENUM:
        assert isinstance(value, int)
        assert field.enum_type is not None
        known = field.enum_type.values_by_number.get(value)
        return known.name if known is not None else str(value)
    if kind == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    if kind == FieldDescriptor.TYPE_STRING:
        assert isinstance(value, str)
        return f'"{escape(value)}"'
    if kind == FieldDescriptor.TYPE_BYTES:
        assert isinstance(value, bytes)
        return f'"{CEscape(value, False)}"'
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        assert isinstance(value, float)
        return render_float(value, kind == FieldDescriptor.TYPE_FLOAT)
    return str(value)


def render_default(field: descriptor_pb2.FieldDescriptorProto) -> str:
    """A proto2 `default = ...` value from the descriptor's textual default_value."""
    kind, text = field.type, field.default_value
    if kind == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
        return f'"{escape(text)}"'  # stored unescaped
    if kind == descriptor_pb2.FieldDescriptorProto.TYPE_BYTES:
        return f'"{text}"'  # stored C-escaped already
    return text  # numbers (inf, -inf, nan included), true/false, enum value names


def indent_block(text: str, indent: str) -> str:
    """Every line after the first of a multi-line value indented by `indent`."""
    return text.replace("\n", "\n" + indent)
