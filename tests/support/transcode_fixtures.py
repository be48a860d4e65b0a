"""What the build_request tests share: the `api` fixture, `Case` rows and their checks.

The tests are split by subject: test_transcode_path.py, _body.py, _mask.py (PATCH), _query.py,
_values.py and _value_errors.py. The request classes are `protoc --python_out` classes (upb) of
the example protos and of the `kitchen` protos below; the bindings are the ones the plugin
generates for them.
"""

from __future__ import annotations

import importlib
import sys
import urllib.parse
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from google.protobuf import descriptor_pool, json_format, message_factory, text_format
from google.protobuf.message import Message

from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from protoc_gen_restmon.runtime.specs import Binding
from protoc_gen_restmon.runtime.status import Code, RpcError
from protoc_gen_restmon.runtime.transcode.request import TranscodeOptions, build_request
from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, generate_inline, protoc

KITCHEN = """\
syntax = "proto3";
package kitchen.v1;

import "google/api/annotations.proto";
import "google/api/httpbody.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

enum Color {
  COLOR_UNSPECIFIED = 0;
  COLOR_RED = 1;
  COLOR_GREEN = 2;
}

message Inner {
  string text = 1;
  int32 number = 2;
  Inner child = 3;
  repeated string tags = 4;
  map<string, string> attrs = 5;
}

// Every kind of field a query parameter can reach, and some it cannot.
message Sink {
  double f_double = 1; float f_float = 2;
  int32 f_int32 = 3; int64 f_int64 = 4; uint32 f_uint32 = 5; uint64 f_uint64 = 6;
  sint32 f_sint32 = 7; sint64 f_sint64 = 8; fixed32 f_fixed32 = 9; fixed64 f_fixed64 = 10;
  sfixed32 f_sfixed32 = 11; sfixed64 f_sfixed64 = 12;
  bool f_bool = 13; string f_string = 14; bytes f_bytes = 15; Color color = 16;
  repeated int64 r_int64 = 17; repeated Color r_color = 18; repeated bytes r_bytes = 19;
  google.protobuf.DoubleValue w_double = 20; google.protobuf.FloatValue w_float = 21;
  google.protobuf.Int64Value w_int64 = 22; google.protobuf.UInt64Value w_uint64 = 23;
  google.protobuf.Int32Value w_int32 = 24; google.protobuf.UInt32Value w_uint32 = 25;
  google.protobuf.BoolValue w_bool = 26; google.protobuf.StringValue w_string = 27;
  google.protobuf.BytesValue w_bytes = 28;
  google.protobuf.Timestamp at = 29; google.protobuf.Duration wait = 30;
  google.protobuf.FieldMask mask = 31; repeated google.protobuf.Timestamp r_at = 32;
  map<int64, string> by_int64 = 33; map<bool, string> by_bool = 34;
  map<uint32, Color> by_uint32 = 35; map<string, google.protobuf.Timestamp> at_by_name = 36;
  map<string, Inner> inner_by_name = 37;
  Inner inner = 38; repeated Inner inners = 39; google.protobuf.Struct extra = 40;
  optional int32 maybe = 41;
  string renamed = 42 [json_name = "alias"];
  oneof choice {
    string choice_text = 43;
    Inner choice_inner = 44;
  }
}

message UploadRequest {
  string name = 1;
  google.api.HttpBody file = 2;
  string note = 3;
}

message TagsRequest {
  string name = 1;
  repeated string tags = 2;
}

message CountRequest {
  string name = 1;
  int64 count = 2;
}

message PatchRequest {
  string name = 1;
  Sink sink = 2;
  google.protobuf.FieldMask update_mask = 3;
  google.protobuf.FieldMask read_mask = 4;
}

message PatchInnerRequest {
  Inner inner = 1;
  google.protobuf.FieldMask fields = 2;
}

message PathRequest {
  string name = 1;
  Inner inner = 2;
  int64 id = 3;
  Color color = 4;
  google.protobuf.Int64Value w = 5;
  bytes raw = 6;
  bool flag = 7;
}

service Kitchen {
  rpc Query(Sink) returns (Sink) {
    option (google.api.http) = {get: "/v1/sink"};
  }
  // The same fields from a JSON body: test_transcode_agreement.py feeds both the same values.
  rpc PostSink(Sink) returns (Sink) {
    option (google.api.http) = {post: "/v1/sink" body: "*"};
  }
  rpc PutInner(Sink) returns (Sink) {
    option (google.api.http) = {put: "/v1/sink/{inner.text}" body: "inner"};
  }
  rpc Upload(UploadRequest) returns (Sink) {
    option (google.api.http) = {post: "/v1/{name=files/*}:upload" body: "file"};
  }
  rpc UploadRaw(google.api.HttpBody) returns (Sink) {
    option (google.api.http) = {post: "/v1/raw" body: "*"};
  }
  rpc SetTags(TagsRequest) returns (Sink) {
    option (google.api.http) = {post: "/v1/{name=things/*}:tags" body: "tags"};
  }
  rpc SetCount(CountRequest) returns (Sink) {
    option (google.api.http) = {post: "/v1/{name=things/*}:count" body: "count"};
  }
  rpc Patch(PatchRequest) returns (Sink) {
    option (google.api.http) = {patch: "/v1/{name=sinks/*}" body: "sink"};
  }
  rpc PatchInner(PatchInnerRequest) returns (Sink) {
    option (google.api.http) = {patch: "/v1/{inner.text=inners/*}" body: "inner"};
  }
  rpc PathTypes(PathRequest) returns (Sink) {
    option (google.api.http) = {get: "/v1/path/{id}/{color}/{w}/{raw}/{flag}/{inner.number}"};
  }
}
"""

LEGACY = """\
syntax = "proto2";
package kitchen.v1;

import "google/api/annotations.proto";

// A closed enum: numbers other than 1 and 2 are not values.
enum Level {
  LEVEL_LOW = 1;
  LEVEL_HIGH = 2;
}

message LegacyRequest {
  optional Level level = 1;
  repeated Level levels = 2;
}

service Legacy {
  rpc Get(LegacyRequest) returns (LegacyRequest) {
    option (google.api.http) = {get: "/v1/legacy"};
  }
}
"""

KITCHEN_FILES = {"kitchen/v1/kitchen.proto": KITCHEN, "kitchen/v1/legacy.proto": LEGACY}
DEFAULTS = TranscodeOptions()
IGNORE_QUERY = TranscodeOptions(ignore_unknown_query=True)
JSON_DEFAULTS = JsonOptions()
IGNORE_FIELDS = JsonOptions(ignore_unknown_fields=True)


class Api(NamedTuple):
    """Request classes by full name and bindings by method name (in declaration order)."""

    classes: dict[str, type[Message]]
    bindings: dict[str, tuple[Binding, ...]]

    def __repr__(self) -> str:  # hypothesis prints it with every falsifying example
        return f"Api({len(self.classes)} classes, {len(self.bindings)} methods)"


def _exec_routes(text: str, name: str) -> tuple[Binding, ...]:
    namespace: dict[str, Any] = {}
    exec(compile(text, name, "exec"), namespace)
    bindings: tuple[Binding, ...] = namespace["BINDINGS"]
    return bindings


def _import_pb2(root: Path, files: list[str]) -> None:
    """Import protoc's _pb2 modules (registering them in the default pool), then forget them.

    Modules another fixture imported first stay; they hold the same descriptors.
    """
    before = set(sys.modules)
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        for file in files:
            importlib.import_module(file.removesuffix(".proto").replace("/", ".") + "_pb2")
    finally:
        sys.path.remove(str(root))
        ours = ("bookstore", "common", "kitchen")
        for name in [m for m in set(sys.modules) - before if m.split(".")[0] in ours]:
            del sys.modules[name]


@pytest.fixture(scope="session", name="api")
def fixture_api(tmp_path_factory: pytest.TempPathFactory, example_files: dict[str, str]) -> Api:
    """The request classes and bindings of the example and kitchen protos (session scope)."""
    root = tmp_path_factory.mktemp("transcode")
    response = generate_inline(root, KITCHEN_FILES, "outputs=routes")
    assert not response.error, response.error
    routes = {f.name: f.content for f in response.file} | example_files
    out = root / "py"
    out.mkdir()
    files = [*EXAMPLE_FILES, *KITCHEN_FILES]
    result = protoc([f"-I{PROTOS}", f"-I{root / 'src'}", f"--python_out={out}", *files])
    assert result.returncode == 0, result.stderr
    _import_pb2(out, files)
    bindings: dict[str, tuple[Binding, ...]] = {}
    for name in ("bookstore/v1/_restmon_routes.py", "kitchen/v1/_restmon_routes.py"):
        for binding in _exec_routes(routes[name], name):
            bindings[binding.method] = (*bindings.get(binding.method, ()), binding)
    pool = descriptor_pool.Default()
    classes = {
        b.request.proto_name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(b.request.proto_name)
        )
        for group in bindings.values()
        for b in group
    }
    return Api(classes, bindings)


class Case(NamedTuple):
    """One request: the method (its `nth` binding), path variable values in template order."""

    method: str
    params: tuple[str, ...] = ()
    query: str | bytes = ""
    body: bytes = b""
    content_type: str | None = None
    options: TranscodeOptions = DEFAULTS
    nth: int = 0
    json_options: JsonOptions = JSON_DEFAULTS


class Failure(NamedTuple):
    code: Code
    status: int
    message: str  # the exact message, or its start when it ends with "…"


def binding_of(api: Api, case: Case) -> Binding:
    return api.bindings[case.method][case.nth]


def transcode(api: Api, case: Case, binding: Binding | None = None) -> Message:
    binding = binding or binding_of(api, case)
    cls = api.classes[binding.request.proto_name]
    pairs = tuple(
        (variable.field, value)
        for variable, value in zip(binding.variables, case.params, strict=False)
    )
    return build_request(
        cls,
        binding,
        pairs,
        case.query,
        case.body,
        case.content_type,
        case.options,
        case.json_options,
    )


def expected(api: Api, case: Case, document: dict[str, Any]) -> Message:
    """The message the proto3 JSON mapping gives for `document`, independent of transcode.py."""
    cls = api.classes[binding_of(api, case).request.proto_name]
    return json_format.ParseDict(document, cls())


def assert_same(actual: Message, wanted: Message) -> None:
    """Equal down to presence and bits (NaN included): compare deterministic encodings."""
    assert actual.SerializeToString(deterministic=True) == wanted.SerializeToString(
        deterministic=True
    ), f"got:\n{text_format.MessageToString(actual)}\nwant:\n{text_format.MessageToString(wanted)}"


def assert_fails(api: Api, case: Case, failure: Failure, binding: Binding | None = None) -> None:
    with pytest.raises(RpcError) as caught:
        transcode(api, case, binding)
    error = caught.value
    if failure.message.endswith("…"):
        assert error.message.startswith(failure.message[:-1]), error.message
    else:
        assert error.message == failure.message
    assert (error.code, error.http_status) == (failure.code, failure.status)


def bad(message: str) -> Failure:
    return Failure(Code.INVALID_ARGUMENT, 400, message)


SHELF = ("shelves/s1",)
BOOK = ("shelves/s1/books/b1",)
LIST = {"parent": "shelves/s1"}


def books(query: str | bytes, options: TranscodeOptions = DEFAULTS) -> Case:
    return Case("ListBooks", SHELF, query, options=options)


def sink(query: str | bytes) -> Case:
    return Case("Query", (), query)


def oneof_clash(first: str, second: str, oneof: str) -> str:
    return f'"{first}" and "{second}" are members of oneof "{oneof}": give only one'


def last_key(query: str | bytes) -> str:
    text = query.decode("utf-8", "backslashreplace") if isinstance(query, bytes) else query
    return urllib.parse.unquote(text.rpartition("&")[2].partition("=")[0])
