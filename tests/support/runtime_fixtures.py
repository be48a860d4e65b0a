"""Fixtures for runtime tests: the example protos (plus an every-type proto) generated for real.

One protoc run per session writes, side by side:
- `restmon_codec_gen/…`: this plugin's output (betterproto packages, route and monitor modules);
- `pb2/…`: `protoc --python_out` modules, the independent build that serves as the oracle. They
  register in the default descriptor pool; the codec's registry has a pool of its own.

Import a fixture into the module that uses it: `from tests.support.runtime_fixtures import
codec_world`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from protoc_gen_restmon.runtime.jsoncodec.registry import DescriptorRegistry
from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, protoc, restmon_plugin

GENERATED = "restmon_codec_gen"  # not `gen`: tests/protoc_tools.imported_output owns that name

# Every scalar type, every well-known type, maps with every key kind, oneofs, proto3 `optional`,
# recursion and the names JSON is easy to get wrong (`foo_bar_1`, an explicit json_name).
ALL_TYPES_PROTO = """\
syntax = "proto3";

package codectest.v1;

import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

enum Color {
  COLOR_UNSPECIFIED = 0;
  COLOR_RED = 1;
  COLOR_GREEN = 2;
}

message Leaf {
  string text = 1;
  int64 count = 2;
}

message AllTypes {
  double f_double = 1;
  float f_float = 2;
  int32 f_int32 = 3;
  int64 f_int64 = 4;
  uint32 f_uint32 = 5;
  uint64 f_uint64 = 6;
  sint32 f_sint32 = 7;
  sint64 f_sint64 = 8;
  fixed32 f_fixed32 = 9;
  fixed64 f_fixed64 = 10;
  sfixed32 f_sfixed32 = 11;
  sfixed64 f_sfixed64 = 12;
  bool f_bool = 13;
  string f_string = 14;
  bytes f_bytes = 15;
  Color f_color = 16;
  Leaf leaf = 17;
  AllTypes child = 18;

  repeated double r_double = 21;
  repeated float r_float = 22;
  repeated sint64 r_sint64 = 23;
  repeated uint64 r_uint64 = 24;
  repeated bool r_bool = 25;
  repeated string r_string = 26;
  repeated bytes r_bytes = 27;
  repeated Color r_color = 28;
  repeated Leaf r_leaf = 29;

  map<int32, string> m_int32 = 31;
  map<uint64, Leaf> m_uint64 = 32;
  map<bool, Color> m_bool = 33;
  map<string, bytes> m_string = 34;
  map<sfixed64, double> m_sfixed64 = 35;
  map<string, google.protobuf.Value> m_value = 36;

  optional int64 o_int64 = 41;
  optional Color o_color = 42;
  optional string o_string = 43;
  optional double o_double = 44;

  oneof choice {
    string choice_text = 51;
    int32 choice_number = 52;
    Leaf choice_leaf = 53;
    google.protobuf.Empty choice_empty = 54;
    google.protobuf.Timestamp choice_time = 55;
  }

  google.protobuf.Any any = 61;
  google.protobuf.Struct struct = 62;
  google.protobuf.Value value = 63;
  google.protobuf.ListValue list_value = 64;
  google.protobuf.Timestamp timestamp = 65;
  google.protobuf.Duration duration = 66;
  google.protobuf.FieldMask field_mask = 67;
  google.protobuf.Empty empty = 68;
  google.protobuf.NullValue null_value = 69;
  repeated google.protobuf.Timestamp r_timestamp = 70;
  repeated google.protobuf.Value r_value = 71;

  google.protobuf.BoolValue w_bool = 81;
  google.protobuf.BytesValue w_bytes = 82;
  google.protobuf.DoubleValue w_double = 83;
  google.protobuf.FloatValue w_float = 84;
  google.protobuf.Int32Value w_int32 = 85;
  google.protobuf.Int64Value w_int64 = 86;
  google.protobuf.UInt32Value w_uint32 = 87;
  google.protobuf.UInt64Value w_uint64 = 88;
  google.protobuf.StringValue w_string = 89;

  int32 foo_bar_1 = 91;
  string x_2_y = 92;
  string renamed = 93 [json_name = "otherName"];
}
"""
ALL_TYPES_FILE = "codectest/v1/all_types.proto"


@dataclass(frozen=True)
class CodecWorld:
    """The generated example packages, loaded three ways: registry (upb), betterproto, _pb2."""

    registry: DescriptorRegistry
    generated: str  # the package the plugin's output is importable as

    def ours(self, full_name: str) -> type[Message]:
        """The upb class built from the monitor modules' embedded descriptors."""
        return self.registry.message_class(full_name)

    def oracle(self, full_name: str) -> type[Message]:
        """The class of the independent `protoc --python_out` build (default pool)."""
        found = descriptor_pool.Default().FindMessageTypeByName(full_name)
        return message_factory.GetMessageClass(found)

    def betterproto(self, full_name: str) -> Any:
        """The betterproto class: `bookstore.v1.Book.Review` is `BookReview` in bookstore.v1."""
        package = self.registry.pool.FindMessageTypeByName(full_name).file.package
        module = importlib.import_module(f"{self.generated}.{package}")
        return getattr(module, full_name[len(package) + 1 :].replace(".", ""))

    def package(self, proto_package: str) -> ModuleType:
        return importlib.import_module(f"{self.generated}.{proto_package}")


@pytest.fixture(scope="session")
def codec_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodecWorld]:
    root = tmp_path_factory.mktemp("codec")
    extra = root / "extra_protos"
    (extra / ALL_TYPES_FILE).parent.mkdir(parents=True)
    (extra / ALL_TYPES_FILE).write_text(ALL_TYPES_PROTO)
    out, pb2 = root / GENERATED, root / "pb2"
    out.mkdir()
    pb2.mkdir()
    (out / "__init__.py").touch()
    result = protoc(
        [
            f"-I{PROTOS}",
            f"-I{extra}",
            f"--plugin=protoc-gen-restmon={restmon_plugin()}",
            f"--restmon_out={out}",
            f"--python_out={pb2}",
            *EXAMPLE_FILES,
            ALL_TYPES_FILE,
        ]
    )
    if result.returncode:
        raise AssertionError(f"protoc failed: {result.stderr}")
    sys.path[:0] = [str(root), str(pb2)]
    importlib.invalidate_caches()
    try:
        for name in [*EXAMPLE_FILES, ALL_TYPES_FILE]:
            importlib.import_module(name.removesuffix(".proto").replace("/", ".") + "_pb2")
        registry = DescriptorRegistry()
        for package in ("common.v1", "bookstore.v1", "codectest.v1"):
            registry.add_module(importlib.import_module(f"{GENERATED}.{package}._restmon_monitor"))
        yield CodecWorld(registry=registry, generated=GENERATED)
    finally:
        for entry in (str(root), str(pb2)):
            sys.path.remove(entry)
