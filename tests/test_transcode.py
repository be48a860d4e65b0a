"""build_request: path variables, body and the PATCH mask (http-transcoding.md §3).

Query parameters and value conversion are in test_transcode_values.py. The request classes are
`protoc --python_out` classes (upb) of the example protos and of the `kitchen` protos below; the
bindings are the ones the plugin generates for them.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from google.protobuf import descriptor_pool, json_format, message_factory, text_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.specs import Binding, FieldPath, PathVariable
from protoc_gen_restmon.runtime.status import Code, RpcError
from protoc_gen_restmon.runtime.transcode import TranscodeOptions, build_request
from tests.protoc_tools import EXAMPLE_FILES, PROTOS, generate_inline, protoc

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
IGNORE_FIELDS = TranscodeOptions(ignore_unknown_fields=True)


class Api(NamedTuple):
    """Request classes by full name and bindings by method name (in declaration order)."""

    classes: dict[str, type[Message]]
    bindings: dict[str, tuple[Binding, ...]]


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
    """Also used by test_transcode_values.py, which imports it."""
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
        cls, binding, pairs, case.query, case.body, case.content_type, case.options
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
    assert (error.code, error.status) == (failure.code, failure.status)


def bad(message: str) -> Failure:
    return Failure(Code.INVALID_ARGUMENT, 400, message)


SHELF = ("shelves/s1",)
BOOK = ("shelves/s1/books/b1",)
LIST = {"parent": "shelves/s1"}

# --- Path variables -----------------------------------------------------------------------------

PATH_CASES = [
    pytest.param(Case("GetShelf", ("s1",)), {"shelf": "s1"}, id="single-segment"),
    pytest.param(
        Case("GetShelf", ("café & co/%2F",)), {"shelf": "café & co/%2F"}, id="value-taken-as-is"
    ),
    pytest.param(
        Case("GetBookFile", ("shelves/s1/books/b1/files/covers/front.png",)),
        {"name": "shelves/s1/books/b1/files/covers/front.png"},
        id="multi-segment",
    ),
    pytest.param(
        Case("UpdateShelf", ("shelves/s1",)),
        {"shelf": {"name": "shelves/s1"}},
        id="nested-field-creates-parent",
    ),
    pytest.param(
        Case("GetChapter", (BOOK[0], "12")),
        {"book": BOOK[0], "chapterNumber": 12},
        id="int-converted",
    ),
    pytest.param(
        Case("PathTypes", ("-9223372036854775808", "COLOR_RED", "42", "3q2-7w", "true", "7")),
        {
            "id": "-9223372036854775808",
            "color": "COLOR_RED",
            "w": "42",
            "raw": "3q2+7w==",
            "flag": True,
            "inner": {"number": 7},
        },
        id="every-leaf-kind",
    ),
    pytest.param(
        Case("PathTypes", ("0", "2", "0", "", "false", "0")),
        {"id": "0", "color": "COLOR_GREEN", "w": "0", "inner": {}},
        id="defaults-wrapper-present",
    ),
    pytest.param(
        Case("PutInner", ("from-url",), body=b'{"text": "from-body", "number": 3}'),
        {"inner": {"text": "from-url", "number": 3}},
        id="url-wins-over-body",
    ),
    pytest.param(
        Case("UpdateShelf", ("shelves/s1",), body=b'{"name": "shelves/x", "displayName": "P"}'),
        {"shelf": {"name": "shelves/s1", "displayName": "P"}},
        id="url-wins-over-body-resource-name",
    ),
]


@pytest.mark.parametrize(("case", "document"), PATH_CASES)
def test_build_request_path(api: Api, case: Case, document: dict[str, Any]) -> None:
    assert_same(transcode(api, case), expected(api, case, document))


PATH_ERRORS = [
    pytest.param(
        Case("GetChapter", (BOOK[0], "twelve")),
        bad('path variable "chapter_number": invalid int32 value "twelve": expected a decimal …'),
        id="bad-int",
    ),
    pytest.param(
        Case("GetChapter", (BOOK[0], "2147483648")),
        bad('path variable "chapter_number": int32 value "2147483648" is out of range …'),
        id="int32-out-of-range",
    ),
    pytest.param(
        Case("PathTypes", ("1", "COLOR_BLUE", "0", "", "true", "0")),
        bad('path variable "color": "COLOR_BLUE" is not a value of enum kitchen.v1.Color'),
        id="bad-enum",
    ),
    pytest.param(
        Case("PathTypes", ("1", "1", "x", "", "true", "0")),
        bad('path variable "w": invalid int64 value "x": expected a decimal integer'),
        id="bad-wrapper",
    ),
    pytest.param(
        Case("PathTypes", ("1", "1", "1", "a", "true", "0")),
        bad('path variable "raw": invalid bytes value "a": expected base64'),
        id="bad-bytes",
    ),
    pytest.param(
        Case("PathTypes", ("1", "1", "1", "", "True", "0")),
        bad('path variable "flag": invalid bool value "True": expected "true" or "false"'),
        id="bad-bool",
    ),
    pytest.param(
        Case("GetShelf", ("\udcff",)),
        bad("path variable \"shelf\": 'utf-8' codec can't encode character '\\udcff' …"),
        id="lone-surrogate",
    ),
]


@pytest.mark.parametrize(("case", "failure"), PATH_ERRORS)
def test_build_request_path_errors(api: Api, case: Case, failure: Failure) -> None:
    assert_fails(api, case, failure)


@pytest.mark.parametrize(
    "proto",
    [
        pytest.param(("nope",), id="unknown-field"),
        pytest.param(("shelf", "nope"), id="unknown-nested-field"),
        pytest.param(("shelf",), id="message-leaf"),
        pytest.param(("shelf", "labels"), id="map-leaf"),
    ],
)
def test_build_request_path_not_matching_class_is_internal(
    api: Api, proto: tuple[str, ...]
) -> None:
    """A binding that does not fit its class is a server bug: 500, not the client's 400."""
    original = binding_of(api, Case("UpdateShelf"))
    variable = PathVariable(FieldPath(proto, proto), 1, 3, multi_segment=True)
    broken = dataclasses.replace(original, variables=(variable,), body=None)
    with pytest.raises(RpcError) as caught:
        transcode(api, Case("UpdateShelf", ("x",)), broken)
    assert (caught.value.code, caught.value.status) == (Code.INTERNAL, 500)
    assert caught.value.message.startswith(f'path variable "{".".join(proto)}": ')


# --- Body -----------------------------------------------------------------------------------------

SHELF_JSON = b'{"displayName": "Poetry", "theme": "GENRE_POETRY", "location": {"floor": 2}}'
SHELF_DOC = {"shelf": {"displayName": "Poetry", "theme": "GENRE_POETRY", "location": {"floor": 2}}}
PNG = b"\x89PNG\r\n\x1a\n\x00\xff"

BODY_CASES = [
    pytest.param(Case("CreateShelf", body=SHELF_JSON), SHELF_DOC, id="json-names"),
    pytest.param(
        Case("CreateShelf", body=b'{"display_name": "Poetry", "book_count": "3"}'),
        {"shelf": {"displayName": "Poetry", "bookCount": "3"}},
        id="proto-names",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type="application/json"),
        SHELF_DOC,
        id="content-type-json",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type='Application/JSON; Charset="UTF-8"'),
        SHELF_DOC,
        id="content-type-case-and-quoted-charset",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type="application/merge-patch+json; q=1"),
        SHELF_DOC,
        id="content-type-structured-suffix",
    ),
    pytest.param(
        Case("CreateShelf", (), "shelf_id=s9&validate_only=true", SHELF_JSON),
        SHELF_DOC | {"shelfId": "s9", "validateOnly": True},
        id="body-and-query",
    ),
    pytest.param(
        Case("CreateShelf", body=b"", content_type="text/plain"),
        {},
        id="empty-body-leaves-fields-empty",
    ),
    pytest.param(Case("CreateShelf", body=b"null"), {}, id="null-body-field"),
    pytest.param(
        Case("CreateShelf", body=b'{"displayName": "x", "nope": {"a": 1}}', options=IGNORE_FIELDS),
        {"shelf": {"displayName": "x"}},
        id="ignore-unknown-fields",
    ),
    pytest.param(
        Case(
            "CheckoutBook",
            BOOK,
            body=b'{"memberId": "m1", "loanPeriod": "1209600s", '
            b'"deposit": {"currencyCode": "EUR", "units": "5"}}',
        ),
        {
            "name": BOOK[0],
            "memberId": "m1",
            "loanPeriod": "1209600s",
            "deposit": {"currencyCode": "EUR", "units": "5"},
        },
        id="body-star-with-path",
    ),
    pytest.param(
        Case("CheckoutBook", BOOK, body=b'{"name": "shelves/x/books/y", "libraryCard": "7"}'),
        {"name": BOOK[0], "libraryCard": "7"},
        id="body-star-url-wins",
    ),
    pytest.param(
        Case("SetTags", ("things/t1",), body=b'["a", "b"]'),
        {"name": "things/t1", "tags": ["a", "b"]},
        id="repeated-body-field",
    ),
    pytest.param(
        Case("SetCount", ("things/t1",), body=b'"9223372036854775807"'),
        {"name": "things/t1", "count": "9223372036854775807"},
        id="scalar-body-field-string",
    ),
    pytest.param(
        Case("SetCount", ("things/t1",), body=b"-12"),
        {"name": "things/t1", "count": "-12"},
        id="scalar-body-field-number",
    ),
    pytest.param(
        Case("Upload", ("files/f1",), "note=hi", PNG, "image/png"),
        {
            "name": "files/f1",
            "note": "hi",
            "file": {"contentType": "image/png", "data": "iVBORw0KGgoA/w=="},
        },
        id="http-body-field-raw",
    ),
    pytest.param(
        Case("Upload", ("files/f1",), body=b'{"a": 1}', content_type="application/json"),
        {"name": "files/f1", "file": {"contentType": "application/json", "data": "eyJhIjogMX0="}},
        id="http-body-field-json-stays-raw",
    ),
    pytest.param(
        Case("Upload", ("files/f1",), body=b"x"),
        {"name": "files/f1", "file": {"data": "eA=="}},
        id="http-body-no-content-type",
    ),
    pytest.param(
        Case("Upload", ("files/f1",)), {"name": "files/f1"}, id="http-body-empty-left-unset"
    ),
    pytest.param(
        Case("UploadRaw", body=b"a,b\n1,2\n", content_type="text/csv"),
        {"contentType": "text/csv", "data": "YSxiCjEsMgo="},
        id="http-body-whole-request",
    ),
    pytest.param(
        Case("CreateShelf", body=b"{}", options=TranscodeOptions(max_body_bytes=2)),
        {"shelf": {}},
        id="body-at-the-limit",
    ),
]


@pytest.mark.parametrize(("case", "document"), BODY_CASES)
def test_build_request_body(api: Api, case: Case, document: dict[str, Any]) -> None:
    assert_same(transcode(api, case), expected(api, case, document))


def unsupported(content_type: str) -> Failure:
    why = f'unsupported content type "{content_type}": the request body must be JSON'
    return Failure(Code.INVALID_ARGUMENT, 415, f"{why} (application/json, UTF-8)")


BODY_ERRORS = [
    pytest.param(
        Case("GetShelf", ("s1",), body=b"{}"),
        bad("GET /v1/shelves/{shelf} takes no request body, got 2 bytes"),
        id="body-on-route-without-body",
    ),
    pytest.param(
        Case("CreateShelf", body=b"{}   ", options=TranscodeOptions(max_body_bytes=4)),
        Failure(
            Code.RESOURCE_EXHAUSTED, 413, "request body of 5 bytes is over the limit of 4 bytes"
        ),
        id="body-over-limit",
    ),
    pytest.param(
        Case("Upload", ("files/f1",), body=PNG, options=TranscodeOptions(max_body_bytes=4)),
        Failure(
            Code.RESOURCE_EXHAUSTED, 413, "request body of 10 bytes is over the limit of 4 bytes"
        ),
        id="http-body-over-limit",
    ),
    pytest.param(
        Case("GetShelf", ("s1",), body=b"{}", options=TranscodeOptions(max_body_bytes=1)),
        Failure(
            Code.RESOURCE_EXHAUSTED, 413, "request body of 2 bytes is over the limit of 1 bytes"
        ),
        id="limit-checked-first",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type="text/plain"),
        unsupported("text/plain"),
        id="text-plain-415",
    ),
    pytest.param(
        Case("CreateShelf", body=b"a=b", content_type="application/x-www-form-urlencoded"),
        unsupported("application/x-www-form-urlencoded"),
        id="form-415",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type="application/json; charset=latin-1"),
        unsupported("application/json; charset=latin-1"),
        id="charset-not-utf8-415",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type="application/jsonx"),
        unsupported("application/jsonx"),
        id="json-lookalike-415",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"displayName": '),
        bad("request body is not valid JSON: Expecting value: line 1 column 17 (char 16)"),
        id="malformed-json",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"displayName": "\xff"}'),
        bad("request body is not UTF-8: 'utf-8' codec can't decode byte 0xff in position 17: …"),
        id="not-utf8",
    ),
    pytest.param(
        Case("CreateShelf", body=b'\xef\xbb\xbf{"displayName": "x"}'),
        bad("request body is not valid JSON: Unexpected UTF-8 BOM …"),
        id="byte-order-mark",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"displayName": "a", "displayName": "b"}'),
        bad('request body is not valid JSON: duplicate key "displayName"'),
        id="duplicate-key",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"location": {"floor": NaN}}'),
        bad('request body is not valid JSON: NaN is not JSON (write it as the string "NaN")'),
        id="bare-nan",
    ),
    pytest.param(
        Case("CreateShelf", body=b"[" * 100_000 + b"]" * 100_000),
        bad("request body is not valid JSON: maximum recursion depth exceeded …"),
        id="deep-array",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"displayName": "x", "nope": 1}'),
        bad("invalid JSON body at shelf.nope: no such field in bookstore.v1.Shelf"),
        id="unknown-field",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"location": {"floor": "two"}}'),
        bad("invalid JSON body at shelf.location.floor: …"),
        id="wrong-type",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"location": {"floor": 2147483648}}'),
        bad("invalid JSON body at shelf.location.floor: …"),
        id="int-out-of-range",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"theme": "GENRE_JAZZ"}'),
        bad(
            'invalid JSON body at shelf.theme: unknown value "GENRE_JAZZ"'
            " for enum bookstore.v1.Genre"
        ),
        id="unknown-enum",
    ),
    pytest.param(
        Case("CreateShelf", body=b'"shelf"'),
        bad("request body must be a JSON object"),
        id="message-field-not-object",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"location": {"floor": 1' + b"0" * 5000 + b"}}"),
        bad("request body is not valid JSON: Exceeds the limit (4300 digits) …"),
        id="huge-number",
    ),
    pytest.param(
        Case("CheckoutBook", BOOK, body=b'["memberId", "m1"]'),
        bad("request body must be a JSON object"),
        id="body-star-not-object",
    ),
    pytest.param(
        Case("CheckoutBook", BOOK, body=b'{"memberId": "m1", "libraryCard": "7"}'),
        bad("invalid JSON body at libraryCard: oneof borrower already set by memberId"),
        id="body-star-two-oneof-members",
    ),
    pytest.param(
        Case("SetCount", ("things/t1",), body=b'"ten"'),
        bad("invalid JSON body at count: …"),
        id="scalar-body-bad-value",
    ),
    pytest.param(
        Case("SetTags", ("things/t1",), body=b'{"a": 1}'),
        bad("invalid JSON body at tags: …"),
        id="repeated-body-not-array",
    ),
    pytest.param(
        Case("PutInner", ("x",), body=b'{"child": ' * 150 + b"{}" + b"}" * 150),
        bad(
            "invalid JSON body at inner.child.child.….child.child.child: "
            "messages nested deeper than 100"
        ),
        id="message-too-deep",
    ),
]


@pytest.mark.parametrize(("case", "failure"), BODY_ERRORS)
def test_build_request_body_errors(api: Api, case: Case, failure: Failure) -> None:
    assert_fails(api, case, failure)


FIELD_NAMES = [
    "displayName", "display_name", "location", "floor", "theme", "labels", "memberId",
    "libraryCard", "loanPeriod", "deposit", "units", "nanos", "title", "price", "pageCount",
    "publishTime", "edition", "reviews", "stars", "chapterTitles", "name", "@type", "value",
]  # fmt: skip
SCALAR_JSON = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8),
    st.sampled_from(["NaN", "Infinity", "1.5s", "2024-01-01T00:00:00Z", "GENRE_POETRY", "-0"]),
)  # fmt: skip
JSON_VALUES = st.recursive(
    SCALAR_JSON,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=4)), inner, max_size=4
        ),
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    JSON_VALUES.map(lambda value: json.dumps(value).encode()), st.binary(max_size=40)
)
CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "text/plain", "application/x+json; charset=utf-16"]
)
BODY_METHODS = [
    Case("CreateShelf"), Case("CheckoutBook", BOOK), Case("UpdateBook", BOOK),
    Case("SetTags", ("things/t",)), Case("SetCount", ("things/t",)), Case("Upload", ("files/f",)),
]  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES, content_type=CONTENT_TYPES, ignore=st.booleans())
def test_build_request_any_body_raises_only_rpc_errors(
    api: Api, body: bytes, content_type: str | None, ignore: bool
) -> None:
    options = TranscodeOptions(ignore_unknown_fields=ignore, max_body_bytes=60)
    for case in BODY_METHODS:
        try:
            transcode(api, case._replace(body=body, content_type=content_type, options=options))
        except RpcError as error:
            assert error.status in (400, 413, 415), error.message


# --- PATCH: update_mask from the body's keys ------------------------------------------------------


def patch(body: bytes, query: str = "", options: TranscodeOptions = DEFAULTS) -> Case:
    return Case("UpdateBook", BOOK, query, body, "application/json", options)


PATCH_CASES = [
    pytest.param(
        patch(b'{"title": "Dune", "pageCount": 412}'),
        ["title", "page_count"],
        {"title": "Dune", "pageCount": 412},
        id="keys-as-proto-names",
    ),
    pytest.param(
        patch(b'{"isbn": "978", "isbn_10": "0", "copies_sold": "5"}'),
        ["isbn_13", "isbn_10", "copies_sold"],
        {"isbn": "978", "isbn10": "0", "copiesSold": "5"},
        id="explicit-json-name-and-proto-name-keys",
    ),
    pytest.param(
        patch(b'{"price": {"currencyCode": "EUR", "units": "3"}}'),
        ["price.currency_code", "price.units"],
        {"price": {"currencyCode": "EUR", "units": "3"}},
        id="nested-object-to-leaves",
    ),
    pytest.param(
        patch(b'{"labels": {"a": "b"}, "regionalPrices": {"EU": {"units": "1"}}}'),
        ["labels", "regional_prices"],
        {"labels": {"a": "b"}, "regionalPrices": {"EU": {"units": "1"}}},
        id="stops-at-maps",
    ),
    pytest.param(
        patch(b'{"publishTime": "2024-01-01T00:00:00Z", "edition": 2, "audioLength": "5s"}'),
        ["publish_time", "edition", "audio_length"],
        {"publishTime": "2024-01-01T00:00:00Z", "edition": 2, "audioLength": "5s"},
        id="stops-at-well-known-types",
    ),
    pytest.param(
        patch(b'{"reviews": [{"stars": 5}], "authors": ["authors/a"]}'),
        ["reviews", "authors"],
        {"reviews": [{"stars": 5}], "authors": ["authors/a"]},
        id="stops-at-arrays",
    ),
    pytest.param(
        patch(b'{"price": {}, "subtitle": null}'),
        ["price", "subtitle"],
        {"price": {}},
        id="empty-object-and-null-are-leaves",
    ),
    pytest.param(
        patch(b'{"title": "x", "nope": 1}', options=IGNORE_FIELDS),
        ["title"],
        {"title": "x"},
        id="ignored-unknown-keys-skipped",
    ),
    pytest.param(
        patch(b'{"title": "x", "isbn": "1"}', query="update_mask=title"),
        ["title"],
        {"title": "x", "isbn": "1"},
        id="mask-from-query-kept",
    ),
    pytest.param(patch(b"{}"), [], {}, id="empty-object-no-paths"),
    pytest.param(patch(b""), [], {}, id="empty-body-no-paths"),
]


@pytest.mark.parametrize(("case", "paths", "book"), PATCH_CASES)
def test_build_request_patch_fills_update_mask(
    api: Api, case: Case, paths: list[str], book: dict[str, Any]
) -> None:
    wanted = expected(api, case, {"book": {"name": BOOK[0], **book}})
    if paths:
        wanted.update_mask.paths.extend(paths)  # type: ignore[attr-defined]
    assert_same(transcode(api, case), wanted)


def test_build_request_patch_explicit_empty_mask_stays_empty(api: Api) -> None:
    actual = transcode(api, patch(b'{"title": "x"}', query="update_mask="))
    assert actual.HasField("update_mask")
    assert list(actual.update_mask.paths) == []  # type: ignore[attr-defined]


def test_build_request_patch_prefers_update_mask_over_other_masks(api: Api) -> None:
    case = Case("Patch", ("sinks/s",), body=b'{"fString": "x", "inner": {"number": 1}}')
    actual = transcode(api, case)
    assert list(actual.update_mask.paths) == ["f_string", "inner.number"]  # type: ignore[attr-defined]
    assert not actual.HasField("read_mask")


def test_build_request_patch_only_mask_field_whatever_its_name(api: Api) -> None:
    case = Case("PatchInner", ("inners/i",), body=b'{"number": 1, "child": {"tags": ["t"]}}')
    actual = transcode(api, case)
    assert list(actual.fields.paths) == ["number", "child.tags"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("http_method", ["PUT", "POST"])
def test_build_request_mask_only_for_patch(api: Api, http_method: str) -> None:
    binding = dataclasses.replace(binding_of(api, patch(b"")), http_method=http_method)
    actual = transcode(api, patch(b'{"title": "x"}'), binding)
    assert not actual.HasField("update_mask")
