"""An index over the request's descriptors: types by full name, their Python names, source lines."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from betterproto.casing import pascal_case
from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    FieldDescriptorProto,
    FileDescriptorProto,
    ServiceDescriptorProto,
    SourceCodeInfo,
)

from protoc_gen_restmon.runtime.specs import MessageRef
from protoc_gen_restmon.runtime.transcode.values import WRAPPERS

# betterproto maps google.protobuf to its bundled copy, betterproto.lib.google.protobuf.
_WELL_KNOWN_PACKAGE = "google.protobuf"

# Type names as FieldDescriptorProto.type_name spells them (leading dot).
SCALAR_WRAPPERS = frozenset(f".{name}" for name in WRAPPERS)


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A message type, with what the generators need to know about it."""

    full_name: str  # "bookstore.v1.Book.Chapter", no leading dot
    proto: DescriptorProto
    file: FileDescriptorProto
    py_name: str  # betterproto's class name: "BookChapter"

    @property
    def package(self) -> str:
        return self.file.package

    def field(self, name: str) -> FieldDescriptorProto | None:
        return next((f for f in self.proto.field if f.name == name), None)


@dataclass
class DescriptorIndex:
    """Every message of the request by full name, and line lookups into source_code_info."""

    files: dict[str, FileDescriptorProto]
    messages: dict[str, MessageInfo]
    _lines: dict[str, dict[tuple[int, ...], int]] = field(default_factory=dict)

    @classmethod
    def build(cls, files: Sequence[FileDescriptorProto]) -> DescriptorIndex:
        messages = {info.full_name: info for file in files for info in _messages_of(file)}
        return cls(files={f.name: f for f in files}, messages=messages)

    def message(self, type_name: str) -> MessageInfo:
        """The message named `.pkg.Name` (as in FieldDescriptorProto.type_name)."""
        return self.messages[type_name.lstrip(".")]

    def is_map(self, field: FieldDescriptorProto) -> bool:
        if field.type != FieldDescriptorProto.TYPE_MESSAGE:
            return False
        entry = self.messages.get(field.type_name.lstrip("."))
        return entry is not None and entry.proto.options.map_entry

    def line(self, file_name: str, path: Sequence[int]) -> int | None:
        """The 1-based line where the element at `path` starts, if protoc sent source info."""
        if file_name not in self._lines:
            self._lines[file_name] = _line_table(self.files[file_name].source_code_info)
        return self._lines[file_name].get(tuple(path))

    def service_file(
        self, full_name: str
    ) -> tuple[FileDescriptorProto, ServiceDescriptorProto] | None:
        """The service named `pkg.Service` and the file declaring it, if the request has it."""
        for file in self.files.values():
            prefix = f"{file.package}." if file.package else ""
            for service in file.service:
                if prefix + service.name == full_name:
                    return file, service
        return None

    def message_ref(self, type_name: str, from_package: str, *, pydantic: bool) -> MessageRef:
        """Where betterproto puts the class of `type_name`, seen from package `from_package`."""
        info = self.message(type_name)
        return MessageRef(
            proto_name=info.full_name,
            module=python_module(info.package, from_package, pydantic=pydantic),
            name=info.py_name,
        )


def python_module(package: str, from_package: str, *, pydantic: bool) -> str:
    """The module betterproto writes `package` to, relative to the one of `from_package`.

    >>> python_module("bookstore.v1", "bookstore.v1", pydantic=False)
    '.'
    >>> python_module("common.v1", "bookstore.v1", pydantic=False)
    '...common.v1'
    """
    if package == _WELL_KNOWN_PACKAGE and from_package != _WELL_KNOWN_PACKAGE:
        return "betterproto.lib." + ("pydantic." if pydantic else "") + package
    here = from_package.split(".") if from_package else []
    there = package.split(".") if package else []
    common = 0
    while common < min(len(here), len(there)) and here[common] == there[common]:
        common += 1
    return "." * (len(here) - common + 1) + ".".join(there[common:])


def json_name(field: FieldDescriptorProto) -> str:
    """The field's JSON name: protoc always fills json_name in requests; compute it otherwise."""
    if field.json_name:
        return field.json_name
    head, *rest = field.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _messages_of(file: FileDescriptorProto) -> Iterator[MessageInfo]:
    prefix = f"{file.package}." if file.package else ""
    stack: list[tuple[DescriptorProto, tuple[str, ...]]] = [
        (m, (m.name,)) for m in reversed(file.message_type)
    ]
    while stack:
        message, names = stack.pop()
        # betterproto flattens nesting: Outer.Inner becomes the class OuterInner.
        yield MessageInfo(
            full_name=prefix + ".".join(names),
            proto=message,
            file=file,
            py_name=pascal_case("".join(f"_{n}" for n in names)),
        )
        stack.extend((m, (*names, m.name)) for m in reversed(message.nested_type))


def _line_table(info: SourceCodeInfo) -> dict[tuple[int, ...], int]:
    table: dict[tuple[int, ...], int] = {}
    for location in info.location:
        table.setdefault(tuple(location.path), location.span[0] + 1)
    return table
