"""The mapping decisions of the OpenAPI builder (docs/openapi.md), one small proto each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from protoc_gen_restmon.runtime.openapi import ApiInfo
from protoc_gen_restmon.runtime.openapi.comments import clean
from protoc_gen_restmon.runtime.openapi.naming import singular
from tests.support.openapi_tools import compile_inline, valid_document

HEADER = """\
syntax = "proto3";
package maptest.v1;
import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "google/api/httpbody.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
"""

PROTO = (
    HEADER
    + """
// The test service.
//
// (-- api-linter: internal note --)
// Second paragraph.
service Things {
  // Gets a thing.
  // (-- internal: not for users --)
  rpc GetThing(GetThingRequest) returns (Thing) {
    option (google.api.http) = {
      get: "/v1/{name=projects/*/things/*}"
      additional_bindings {get: "/v1/things/{name=**}"}
      additional_bindings {get: "/v1/{name=projects/*/things/*}:peek"}
    };
  }
  rpc Wild(GetThingRequest) returns (Thing) {
    option (google.api.http) = {custom: {kind: "*" path: "/v1/wild/{name}"}};
  }
  rpc Head(GetThingRequest) returns (google.protobuf.Empty) {
    option (google.api.http) = {custom: {kind: "HEAD" path: "/v1/{name=projects/*/things/*}"}};
  }
  rpc Old(Thing) returns (Thing) {
    option deprecated = true;
    option (google.api.http) = {post: "/v1/{name=projects/*}/things" body: "*"};
  }
  rpc Put(PutRequest) returns (Thing) {
    option (google.api.http) = {put: "/v1/things/{id}" body: "thing" response_body: "labels"};
  }
  rpc Upload(google.api.HttpBody) returns (google.api.HttpBody) {
    option (google.api.http) = {post: "/v1/upload" body: "*"};
  }
  rpc Watch(GetThingRequest) returns (stream Thing) {
    option (google.api.http) = {get: "/v1/things:watch"};
  }
  rpc Feed(stream Thing) returns (Thing) {
    option (google.api.http) = {post: "/v1/things:feed" body: "*"};
  }
  rpc Unbound(Thing) returns (Thing);
}

enum Kind {
  KIND_UNSPECIFIED = 0;
  KIND_BIG = 1;
}

message Inner {
  int64 count = 1;
  repeated string tags = 2;
}

message GetThingRequest {
  string name = 1;
  Inner inner = 2;
  repeated Kind kinds = 3;
  map<string, string> labels = 4;
  map<int32, Inner> by_number = 5;
  google.protobuf.Timestamp since = 6;
  google.protobuf.Int32Value min = 7;
  GetThingRequest again = 8;
  bytes token = 9;
  double ratio = 10;
}

// A thing.
message Thing {
  // The name. (-- hidden --)
  string name = 1 [(google.api.field_behavior) = IDENTIFIER];
  string title = 2 [(google.api.field_behavior) = REQUIRED];
  string display_name = 3 [(google.api.field_behavior) = REQUIRED];
  google.protobuf.Timestamp create_time = 4 [(google.api.field_behavior) = OUTPUT_ONLY];
  string secret = 5 [(google.api.field_behavior) = INPUT_ONLY];
  string legacy = 6 [deprecated = true];
  oneof owner {
    string user = 7;
    string group_name = 8;
  }
  optional int32 size = 9;
  map<string, string> labels = 10;
  Kind kind = 11;
}

message PutRequest {
  string id = 1;
  Thing thing = 2;
}
"""
)


@pytest.fixture(scope="module")
def compiled_things(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], list[Any]]:
    return compile_inline(tmp_path_factory.mktemp("things"), {"maptest/v1/things.proto": PROTO})


@pytest.fixture(scope="module")
def document(compiled_things: tuple[list[Any], list[Any]]) -> dict[str, Any]:
    return valid_document(*compiled_things, api_key_services=frozenset({"maptest.v1.Things"}))


def operation(document: dict[str, Any], operation_id: str) -> tuple[str, str, dict[str, Any]]:
    for path, item in document["paths"].items():
        for method, op in [*item.items(), *item.get("x-restmon-methods", {}).items()]:
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return path, method, op
    raise AssertionError(f"no operation {operation_id}")


def parameter(op: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in op.get("parameters", []) if p["name"] == name)


def component(document: dict[str, Any], name: str) -> dict[str, Any]:
    return document["components"]["schemas"][name]  # type: ignore[no-any-return]


def test_multi_segment_variables_expand_with_one_parameter_per_wildcard(
    document: dict[str, Any],
) -> None:
    path, method, op = operation(document, "Things_GetThing")
    assert (path, method) == ("/v1/projects/{project}/things/{thing}", "get")
    project = parameter(op, "project")
    assert project["in"] == "path" and project["required"] is True
    assert project["schema"] == {"type": "string", "pattern": "^[^/]+$"}
    assert project["x-restmon-field"] == "name"
    assert op["x-restmon-variables"] == [
        {
            "field": "name",
            "jsonField": "name",
            "template": "projects/*/things/*",
            "parameters": ["project", "thing"],
        }
    ]
    assert op["x-restmon-template"] == "/v1/{name=projects/*/things/*}"


def test_additional_bindings_number_their_operation_ids(document: dict[str, Any]) -> None:
    deep_path, _, deep = operation(document, "Things_GetThing_2")
    assert deep_path == "/v1/things/{name}"
    name = parameter(deep, "name")
    assert "pattern" not in name["schema"] and "`**`" in name["description"]
    verb_path, _, _ = operation(document, "Things_GetThing_3")
    assert verb_path == "/v1/projects/{project}/things/{thing}:peek"


def test_custom_kinds_are_kept_and_head_has_no_bodies(document: dict[str, Any]) -> None:
    path, method, wild = operation(document, "Things_Wild")
    assert (path, method) == ("/v1/wild/{name}", "*")
    assert "x-restmon-methods" in document["paths"]["/v1/wild/{name}"]
    _, method, head = operation(document, "Things_Head")
    assert method == "head"
    assert all("content" not in answer for answer in head["responses"].values())
    assert head["operationId"] not in {op for op in ("Things_GetThing",)}


def test_unbound_methods_are_absent(document: dict[str, Any]) -> None:
    with pytest.raises(AssertionError):
        operation(document, "Things_Unbound")


def test_unbound_methods_with_generate_unbound_methods(tmp_path: Path) -> None:
    files, bindings = compile_inline(
        tmp_path, {"maptest/v1/things.proto": PROTO}, "generate_unbound_methods"
    )
    document = valid_document(files, bindings)
    path, method, _ = operation(document, "Things_Unbound")
    assert (path, method) == ("/maptest.v1.Things/Unbound", "post")


def test_query_parameters_are_the_unbound_leaves(document: dict[str, Any]) -> None:
    _, _, op = operation(document, "Things_GetThing")
    names = [p["name"] for p in op["parameters"] if p["in"] == "query"]
    # `inner.count` dotted, `again` (recursion) not followed, `byNumber` (message values) absent
    assert names == [
        "inner.count",
        "inner.tags",
        "kinds",
        "labels",
        "since",
        "min",
        "token",
        "ratio",
    ]
    assert parameter(op, "inner.count")["schema"]["format"] == "int64"
    assert parameter(op, "inner.tags")["style"] == "form"
    assert parameter(op, "inner.tags")["explode"] is True
    labels = parameter(op, "labels")
    assert (labels["style"], labels["explode"]) == ("deepObject", True)
    assert labels["schema"]["additionalProperties"] == {"type": "string"}
    kinds = parameter(op, "kinds")["schema"]["items"]["anyOf"]
    assert kinds[0] == {"type": "string", "enum": ["KIND_UNSPECIFIED", "KIND_BIG"]}
    assert parameter(op, "min")["schema"]["format"] == "int32"  # a wrapper: its inner value


def test_body_star_leaves_out_the_path_fields(document: dict[str, Any]) -> None:
    _, _, op = operation(document, "Things_Old")
    assert op["deprecated"] is True
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert "name" not in schema["properties"] and "title" in schema["properties"]
    assert "parameters" not in op or all(p["in"] == "path" for p in op["parameters"])


def test_body_field_and_response_body(document: dict[str, Any]) -> None:
    _, _, op = operation(document, "Things_Put")
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["anyOf"] == [{"$ref": "#/components/schemas/maptest.v1.Thing-Input"}, {"type": "null"}]
    answer = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["type"] == "object" and answer["additionalProperties"] == {"type": "string"}
    assert parameter(op, "id")["schema"]["pattern"] == "^[^/]+$"


def test_http_body_is_raw_content(document: dict[str, Any]) -> None:
    _, _, op = operation(document, "Things_Upload")
    assert op["requestBody"]["content"] == {"*/*": {"schema": {}}}
    assert op["responses"]["200"]["content"] == {"*/*": {"schema": {}}}


def test_streams_are_ndjson_and_server_sent_events(document: dict[str, Any]) -> None:
    _, _, watch = operation(document, "Things_Watch")
    content = watch["responses"]["200"]["content"]
    assert set(content) == {"application/x-ndjson", "text/event-stream"}
    result, error = content["application/x-ndjson"]["schema"]["oneOf"]
    assert result["properties"]["result"] == {"$ref": "#/components/schemas/maptest.v1.Thing"}
    assert error["required"] == ["error"]
    _, _, feed = operation(document, "Things_Feed")
    assert set(feed["requestBody"]["content"]) == {"application/x-ndjson"}


def test_field_behavior_comments_and_deprecation(document: dict[str, Any]) -> None:
    request = component(document, "maptest.v1.Thing-Input")
    response = component(document, "maptest.v1.Thing")
    assert request["required"] == ["title"]
    assert {"anyOf": [{"required": ["displayName"]}, {"required": ["display_name"]}]} in request[
        "allOf"
    ]
    assert response["properties"]["createTime"]["readOnly"] is True
    assert request["properties"]["secret"]["writeOnly"] is True
    assert request["properties"]["legacy"]["deprecated"] is True
    assert response["properties"]["name"]["description"] == "The name."
    assert response["description"] == "A thing."
    _, _, op = operation(document, "Things_GetThing")
    assert op["summary"] == "Gets a thing."
    tag = next(t for t in document["tags"] if t["name"] == "maptest.v1.Things")
    assert "internal" not in tag["description"] and "Second paragraph." in tag["description"]


def test_request_view_reads_both_names_and_nulls(document: dict[str, Any]) -> None:
    request = component(document, "maptest.v1.Thing-Input")
    assert "displayName" in request["properties"]
    assert "^display_name$" in request["patternProperties"]
    assert request["additionalProperties"] is False
    assert request["properties"]["title"]["anyOf"][1] == {"type": "null"}


def test_response_view_requires_the_fields_always_written(document: dict[str, Any]) -> None:
    response = component(document, "maptest.v1.Thing")
    required = set(response["required"])
    assert {"name", "title", "labels", "kind"} <= required
    assert not {"user", "groupName", "size", "createTime"} & required  # fields with presence
    assert response["not"] == {"anyOf": [{"required": ["user", "groupName"]}]}


def test_json_options_change_the_views(compiled_things: tuple[list[Any], list[Any]]) -> None:
    options = JsonOptions(emit_unpopulated=False, use_proto_names=True, enums_as_ints=True)
    document = valid_document(*compiled_things, json_options=options)
    response = component(document, "maptest.v1.Thing")
    assert "display_name" in response["properties"] and "required" not in response
    assert component(document, "maptest.v1.Kind")["type"] == "integer"
    lenient = valid_document(
        *compiled_things, json_options=JsonOptions(ignore_unknown_fields=True)
    )
    assert "additionalProperties" not in component(lenient, "maptest.v1.Thing-Input")


def test_errors_and_security(document: dict[str, Any]) -> None:
    _, _, op = operation(document, "Things_Put")
    assert op["security"] == [{"apiKey": []}]
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "An API key of the monitor (methods that require one).",
    }
    assert {"400", "404", "413", "415", "500", "503"} <= set(op["responses"])
    _, _, get = operation(document, "Things_GetThing")
    assert "413" not in get["responses"] and "415" not in get["responses"]
    status = component(document, "google.rpc.Status")
    assert status["properties"]["details"]["items"] == {
        "$ref": "#/components/schemas/google.protobuf.Any"
    }


def test_google_error_format(compiled_things: tuple[list[Any], list[Any]]) -> None:
    document = valid_document(*compiled_things, error_format="google")
    error = document["components"]["responses"]["Error404"]["content"]["application/json"]
    body = component(document, error["schema"]["$ref"].rsplit("/", 1)[-1])
    assert body["required"] == ["error"]
    assert body["properties"]["error"]["required"] == ["code", "message", "status", "details"]


def test_info(compiled_things: tuple[list[Any], list[Any]]) -> None:
    info = ApiInfo(title="Things", version="2.1", description="All the things.")
    document = valid_document(*compiled_things, info=info)
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Things", "version": "2.1", "description": "All the things."}


@pytest.mark.parametrize(
    ("plural", "one"),
    [("shelves", "shelf"), ("books", "book"), ("policies", "policy"), ("keyRings", "keyRing"),
     ("addresses", "address"), ("v1", "v1"), ("data", "data")],
)
def test_singular(plural: str, one: str) -> None:
    assert singular(plural) == one


def test_internal_comment_blocks_are_stripped() -> None:
    assert clean(" Hello.\n (-- internal\n more --)\n World.\n") == "Hello.\n\nWorld."
