"""The descriptors a document is built from: one pool of its own, filled from the given files."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Final

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor


def build_pool(
    files: Sequence[descriptor_pb2.FileDescriptorProto],
) -> descriptor_pool.DescriptorPool:
    """A pool holding `files` (dependencies first). A dependency missing from `files` is taken
    from the protobuf runtime's default pool (the well-known types, googleapis-common-protos)."""
    pool = descriptor_pool.DescriptorPool()
    loaded: set[str] = set()
    given = {file.name: file for file in files}

    def add(file: descriptor_pb2.FileDescriptorProto) -> None:
        if file.name in loaded:
            return
        for dependency in file.dependency:
            if dependency not in loaded:
                add(given.get(dependency) or _runtime_file(dependency))
        pool.Add(file)
        loaded.add(file.name)

    for file in files:
        add(file)
    for name in ALWAYS:  # the error body's details are Anys
        if name not in loaded:
            add(_runtime_file(name))
    return pool


ALWAYS: Final = ("google/protobuf/any.proto",)


def _runtime_file(name: str) -> descriptor_pb2.FileDescriptorProto:
    try:
        found = descriptor_pool.Default().FindFileByName(name)
    except KeyError:
        # Not imported yet: `google/api/http.proto` lives in `google.api.http_pb2`.
        importlib.import_module(name.removesuffix(".proto").replace("/", ".") + "_pb2")
        found = descriptor_pool.Default().FindFileByName(name)
    proto = descriptor_pb2.FileDescriptorProto()
    found.CopyToProto(proto)
    return proto


def find_message(pool: descriptor_pool.DescriptorPool, full_name: str) -> Descriptor:
    return pool.FindMessageTypeByName(full_name.lstrip("."))
