"""Descriptors at run time: a pool filled from generated monitor modules, and its message classes.

registry = DescriptorRegistry()
registry.add_module(gen.bookstore.v1._restmon_monitor)
Book = registry.message_class("bookstore.v1.Book")   # a upb message class
"""

from __future__ import annotations

from types import ModuleType
from typing import cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from protoc_gen_restmon.runtime.descriptor_files import DescriptorError, needed_files

__all__ = ["DescriptorError", "DescriptorRegistry", "descriptor_of", "is_map_field"]


class DescriptorRegistry:
    """A descriptor pool of its own, filled from generated monitor modules.

    Each module brings its own files and every file they import (`descriptor_files`: found in
    the generated package that owns it, or in the protobuf runtime). A file that several
    packages need (a shared dependency, a well-known type) is loaded once;
    two different definitions under one file name are a `DescriptorError`. Comments
    (`source_code_info`) do not count as a difference.
    """

    def __init__(self) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        self._files: dict[str, tuple[bytes, str]] = {}  # name -> (definition, who embedded it)
        self._classes: dict[str, type[Message]] = {}

    def add_module(self, module: ModuleType) -> None:
        """Load a generated monitor module's files and all their imports, dependencies first."""
        for file in needed_files(module):
            self._add(file.name, file.proto, file.source)

    def add_file(self, name: str, serialized: bytes, *, source: str = "") -> None:
        """Load one serialized FileDescriptorProto; its imports must be loaded already."""
        proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
        if proto.name != name:
            raise DescriptorError(f"{source}: descriptor of {proto.name!r} listed as {name!r}")
        self._add(name, proto, source)

    def _add(self, name: str, proto: descriptor_pb2.FileDescriptorProto, source: str) -> None:
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


# --- Questions the codec asks of descriptors ---------------------------------------------------


def descriptor_of(message: Message | type[Message]) -> Descriptor:
    """The descriptor of a upb message or message class, typed as the pure-Python one."""
    return cast(Descriptor, message.DESCRIPTOR)


def is_map_field(field: FieldDescriptor) -> bool:
    """A `map<K, V>` field: repeated, of a synthesized `map_entry` message type."""
    entry = field.message_type
    return entry is not None and field.is_repeated and entry.GetOptions().map_entry
