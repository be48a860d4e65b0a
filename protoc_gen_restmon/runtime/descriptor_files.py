"""Every `.proto` file a generated monitor module needs, found by name at run time.

A monitor module embeds the FileDescriptorProtos of its own package's files (`FILE_DESCRIPTORS`)
and names the files they import (`IMPORTS`: file name, proto package). Each named file is
looked for, in this order:

1. in the generated monitor module of its package, in the same output root (`gen.common.v1.
   _restmon_monitor` for `common/v1/money.proto` imported from `gen.bookstore.v1`), whichever
   protoc run wrote it;
2. in the protobuf runtime's default descriptor pool, after importing the module protoc's Python
   generator writes for it (`google/api/http.proto` → `google.api.http_pb2`): the well-known
   types ship with `protobuf`, `google/api`, `google/rpc`, `google/type`, … with
   `googleapis-common-protos`. Those come without comments (`source_code_info`).

Modules of the earlier shape, which embedded every import, need no lookup at all.
"""

from __future__ import annotations

import base64
import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from google.protobuf import descriptor_pb2, descriptor_pool

from protoc_gen_restmon.runtime.specs import MONITOR_MODULE

__all__ = ["DescriptorError", "ProtoFile", "needed_files"]


class DescriptorError(Exception):
    """Embedded descriptors that do not fit together, or a message the registry does not hold."""


@dataclass(frozen=True, slots=True)
class ProtoFile:
    """One file's descriptor and where it was found."""

    proto: descriptor_pb2.FileDescriptorProto
    serialized: bytes
    source: str  # the module embedding it, or "the protobuf runtime (google.api.http_pb2)"
    path: str | None  # that module's file, when it has one

    @property
    def name(self) -> str:
        return self.proto.name


def needed_files(module: ModuleType) -> list[ProtoFile]:
    """The files `module` embeds and every file they import, each once, dependencies first."""
    embedded = getattr(module, "FILE_DESCRIPTORS", None)
    if embedded is None:
        raise DescriptorError(
            f"{module.__name__} has no FILE_DESCRIPTORS: pass a generated monitor module"
        )
    finder = _Finder(module)
    order: list[ProtoFile] = []
    done: set[str] = set()
    for name, _ in embedded:
        order.extend(finder.closure(name, module.__name__, done))
    return order


class _Finder:
    def __init__(self, module: ModuleType) -> None:
        self.root = _output_root(module)
        self.encoded: dict[str, tuple[str, ModuleType]] = {}  # name -> (base64, its module)
        self.packages: dict[str, str] = {}  # name -> proto package, from IMPORTS
        self.found: dict[str, ProtoFile] = {}
        self.tried: set[str] = set()  # owner modules looked for
        self._index(module)

    def _index(self, module: ModuleType) -> None:
        for name, data in getattr(module, "FILE_DESCRIPTORS", ()):
            self.encoded.setdefault(name, (data, module))
        for name, package in getattr(module, "IMPORTS", ()):
            self.packages.setdefault(name, package)

    def closure(self, name: str, importer: str, done: set[str]) -> Iterator[ProtoFile]:
        """`name` after everything it imports (depth first), skipping files in `done`."""
        if name in done:
            return
        file = self.find(name, importer)
        for dependency in file.proto.dependency:
            yield from self.closure(dependency, name, done)
        if name not in done:
            done.add(name)
            yield file

    def find(self, name: str, importer: str) -> ProtoFile:
        file = self.found.get(name)
        if file is None:
            file = self._embedded(name) or self._from_owner(name) or _from_runtime(name)
            if file is None:
                raise DescriptorError(self._missing(name, importer))
            self.found[name] = file
        return file

    def _embedded(self, name: str) -> ProtoFile | None:
        entry = self.encoded.get(name)
        if entry is None:
            return None
        data, module = entry
        serialized = base64.b64decode(data)
        proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
        if proto.name != name:
            raise DescriptorError(
                f"{module.__name__}: descriptor of {proto.name!r} listed as {name!r}"
            )
        return ProtoFile(proto, serialized, module.__name__, getattr(module, "__file__", None))

    def _from_owner(self, name: str) -> ProtoFile | None:
        package = self.packages.get(name)
        owner = None if package is None else self._owner_name(package)
        if owner is None or owner in self.tried:
            return None
        self.tried.add(owner)
        if not self._written(owner):
            return None
        try:
            module = importlib.import_module(owner)
        except ModuleNotFoundError as err:  # that package was not generated: only that is fine
            if err.name and (owner == err.name or owner.startswith(err.name + ".")):
                return None
            raise
        self._index(module)
        return self._embedded(name)

    def _written(self, owner: str) -> bool:
        """Whether the owner's module file exists, looked for without importing anything:
        importing it would first import its package's betterproto module, which a package
        that only lends its name (google.api, when nobody generated its monitor module) does
        not need. When the output root cannot be located, importing decides."""
        parts = owner.split(".")
        if self.root:
            root = sys.modules.get(self.root)
            paths = getattr(root, "__path__", None)
            if paths is None:
                return True
            parts = parts[len(self.root.split(".")) :]
        else:
            paths = sys.path
        return any(Path(p, *parts[:-1], parts[-1] + ".py").is_file() for p in paths)

    def _owner_name(self, package: str) -> str | None:
        if self.root is None:
            return None
        return ".".join(part for part in (self.root, package, MONITOR_MODULE) if part)

    def _missing(self, name: str, importer: str) -> str:
        package = self.packages.get(name)
        where = f"no generated module {self._owner_name(package)} holds it, " if package else ""
        return (
            f"{name} (imported by {importer}): {where}and the protobuf runtime has no "
            f"{_pb2_module(name)}; generate its package with protoc-gen-restmon"
        )


def _output_root(module: ModuleType) -> str | None:
    """`gen` for `gen.bookstore.v1._restmon_monitor` of proto package bookstore.v1; None when
    the module's name does not end in its package (loaded from a path under another name)."""
    python_package = module.__name__.rpartition(".")[0].split(".") if module.__name__ else []
    proto_package = [p for p in str(getattr(module, "PACKAGE", "")).split(".") if p]
    if not proto_package:
        return ".".join(python_package)
    if python_package[-len(proto_package) :] != proto_package:
        return None
    return ".".join(python_package[: -len(proto_package)])


def _pb2_module(name: str) -> str:
    return name.removesuffix(".proto").replace("/", ".") + "_pb2"


def _from_runtime(name: str) -> ProtoFile | None:
    """`name` from the default descriptor pool, its `_pb2` module imported first if need be."""
    module_name = _pb2_module(name)
    pool = descriptor_pool.Default()
    try:
        file = pool.FindFileByName(name)
    except KeyError:
        try:
            importlib.import_module(module_name)
            file = pool.FindFileByName(name)
        except (ImportError, ValueError, KeyError):
            return None
    serialized = file.serialized_pb
    proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None) if module is not None else None
    return ProtoFile(proto, serialized, f"the protobuf runtime ({module_name})", path)
