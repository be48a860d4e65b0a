"""Generation-time rejects (docs/http-transcoding.md §1): file, line, method and cause of each."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from google.protobuf.compiler.plugin_pb2 import CodeGeneratorResponse

from tests.support.protoc_tools import (
    generate_inline,
    imported_output,
    line_of,
    protoc,
    restmon_plugin,
    write_protos,
)

FILE = "a/v1/x.proto"
METHOD = "a.v1.Things.Get"
OPTION = "option (google.api.http)"
ROUTES_ONLY = "outputs=routes+monitor"

HEADER = """\
syntax = "proto3";
package a.v1;

import "google/api/annotations.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message Inner {
  string id = 1;
  google.protobuf.Timestamp when = 2;
}

message Req {
  string name = 1;
  int64 count = 2;
  repeated string tags = 3;
  map<string, string> labels = 4;
  Inner inner = 5;
  repeated Inner inners = 6;
  google.protobuf.StringValue title = 7;
  google.protobuf.Timestamp when = 8;
}

message Resp {
  string name = 1;
}
"""


def one_method(rule: str, before: str = "") -> str:
    """HEADER plus `service Things` with one method `Get` whose google.api.http rule is `rule`."""
    return (
        HEADER
        + "\nservice Things {\n  rpc Get(Req) returns (Resp) {\n"
        + before
        + f"    {OPTION} = {rule};\n  }}\n}}\n"
    )


def get(template: str) -> str:
    return f'{{get: "{template}"}}'


def assert_rejected(response: CodeGeneratorResponse, expected: list[str]) -> None:
    assert response.error.splitlines() == expected
    assert list(response.file) == []


# (template split in two at the position the error points at, the parser's reason)
BAD_TEMPLATES = [
    pytest.param("", "", "empty template", id="empty"),
    pytest.param("", "v1/things", "a template must start with '/'", id="no-leading-slash"),
    pytest.param("/v1/things", "/", "trailing '/'", id="trailing-slash"),
    pytest.param("/v1/", "/things", "empty segment", id="empty-segment"),
    pytest.param("/v1/", "{}", "empty variable '{}'", id="empty-variable"),
    pytest.param("/v1/{name=", "{inner.id}}", "nested variable", id="nested-variable"),
    pytest.param("/v1/a", "{name}", "a variable must be a whole segment", id="partial-before"),
    pytest.param("/v1/{name}", "b", "a variable must be a whole segment", id="partial-after"),
    pytest.param("/v1/", "{name", "unbalanced '{'", id="unclosed-brace"),
    pytest.param("/v1/name", "}", "unbalanced '}'", id="unopened-brace"),
    pytest.param(
        "/v1/{", "1}", "invalid identifier: expected a letter or '_', found '1'", id="ident-digit"
    ),
    pytest.param("/v1/{a", "-b}", "invalid character '-' in field path", id="ident-dash"),
    pytest.param("/v1/things", ":", "empty custom verb after ':'", id="empty-verb"),
    pytest.param("/v1/", "%zz", "invalid percent escape '%zz'", id="escape-not-hex"),
    pytest.param("/v1/a", "%2", "invalid percent escape '%2'", id="escape-truncated"),
    pytest.param("/v1/{name}/{", "name}", "field path 'name' is bound twice", id="same-variable"),
]


@pytest.mark.parametrize(("head", "tail", "reason"), BAD_TEMPLATES)
def test_template_syntax_error_names_file_line_method_template_and_position(
    tmp_path: Path, head: str, tail: str, reason: str
) -> None:
    template = head + tail
    text = one_method(get(template))
    response = generate_inline(tmp_path, {FILE: text}, ROUTES_ONLY)
    where = f"{FILE}:{line_of(text, OPTION)}: {METHOD}"
    assert_rejected(response, [f"{where}: template {template!r}: {reason} at position {len(head)}"])


def bad_variable(template: str, cause: str, id: str) -> object:
    return pytest.param(get(template), f"template {template!r}: variable {cause}", id=id)


SCALAR_LEAF = "must end at a scalar, enum or wrapper field, but"
NO_PATTERN = "an HttpRule needs a pattern: get, put, post, delete, patch or custom"

# (rule, the cause after "file:line: method: ")
BAD_RULES = [
    bad_variable("/v1/{nope}", "'nope' names no field 'nope' in a.v1.Req", id="var-unknown"),
    bad_variable(
        "/v1/{inner.nope}",
        "'inner.nope' names no field 'nope' in a.v1.Inner",
        id="var-unknown-nested",
    ),
    bad_variable(
        "/v1/{inners.id}",
        "'inners.id' goes through 'inners', which is repeated",
        id="var-through-repeated",
    ),
    bad_variable(
        "/v1/{labels.key}",
        "'labels.key' goes through 'labels', which is a map",
        id="var-through-map",
    ),
    bad_variable(
        "/v1/{name.x}",
        "'name.x' goes through 'name', which is not a message field",
        id="var-through-scalar",
    ),
    bad_variable(
        "/v1/{inner}",
        f"'inner' {SCALAR_LEAF} 'inner' is a message of type a.v1.Inner",
        id="var-ends-at-message",
    ),
    bad_variable(
        "/v1/{inner.when}",
        f"'inner.when' {SCALAR_LEAF} 'when' is a message of type google.protobuf.Timestamp",
        id="var-ends-at-timestamp",
    ),
    bad_variable("/v1/{tags}", "'tags' ends at 'tags', which is repeated", id="var-repeated-leaf"),
    bad_variable("/v1/{labels}", "'labels' ends at 'labels', which is a map", id="var-map-leaf"),
    pytest.param(
        '{post: "/v1/a" body: "nope"}',
        "template '/v1/a': body 'nope' names no top-level field of a.v1.Req",
        id="body-unknown",
    ),
    pytest.param(
        '{post: "/v1/a" body: "inner.id"}',
        "template '/v1/a': body 'inner.id' names no top-level field of a.v1.Req",
        id="body-not-top-level",
    ),
    pytest.param(
        '{get: "/v1/a" additional_bindings: {post: "/v1/b" body: "nope"}}',
        "template '/v1/b': body 'nope' names no top-level field of a.v1.Req",
        id="body-unknown-in-additional-binding",
    ),
    pytest.param(
        '{get: "/v1/a" response_body: "nope"}',
        "template '/v1/a': response_body 'nope' names no top-level field of a.v1.Resp",
        id="response-body-unknown",
    ),
    pytest.param(
        '{get: "/v1/a" additional_bindings: {get: "/v1/b" additional_bindings: {get: "/v1/c"}}}',
        "template '/v1/b': additional_bindings may not nest (one level only)",
        id="nested-additional-bindings",
    ),
    pytest.param('{body: "*"}', NO_PATTERN, id="no-pattern"),
    pytest.param(
        '{get: "/v1/a" additional_bindings: {body: "*"}}',
        NO_PATTERN,
        id="no-pattern-in-additional-binding",
    ),
    pytest.param(
        '{custom: {path: "/v1/a"}}',
        "custom pattern '/v1/a' has an empty kind",
        id="custom-without-kind",
    ),
    pytest.param(
        '{custom: {kind: "" path: "/v1/a"}}',
        "custom pattern '/v1/a' has an empty kind",
        id="custom-empty-kind",
    ),
]


@pytest.mark.parametrize(("rule", "cause"), BAD_RULES)
def test_bad_rule_is_rejected_with_file_line_method_and_cause(
    tmp_path: Path, rule: str, cause: str
) -> None:
    text = one_method(rule)
    response = generate_inline(tmp_path, {FILE: text}, ROUTES_ONLY)
    assert_rejected(response, [f"{FILE}:{line_of(text, OPTION)}: {METHOD}: {cause}"])


def test_error_line_is_the_http_option_even_after_another_option(tmp_path: Path) -> None:
    text = one_method(get("/v1/{nope}"), before="    option deprecated = true;\n")
    response = generate_inline(tmp_path, {FILE: text}, ROUTES_ONLY)
    line = line_of(text, OPTION)
    assert line == line_of(text, "option deprecated") + 1
    assert response.error.startswith(f"{FILE}:{line}: {METHOD}: template '/v1/{{nope}}'")


# Field paths the rules accept: a scalar wrapper leaf, a scalar through a singular message.
GOOD_VARIABLES = [
    pytest.param("/v1/{title}", ("title",), id="string-value-wrapper-leaf"),
    pytest.param("/v1/{inner.id}", ("inner", "id"), id="through-singular-message"),
    pytest.param("/v1/{count}", ("count",), id="int64-leaf"),
]


@pytest.mark.parametrize(("template", "field"), GOOD_VARIABLES)
def test_variable_to_scalar_or_wrapper_is_accepted(
    tmp_path: Path, template: str, field: tuple[str, ...]
) -> None:
    response = generate_inline(tmp_path, {FILE: one_method(get(template))}, ROUTES_ONLY)
    assert response.error == ""
    with imported_output(response, tmp_path) as gen:
        routes = importlib.import_module(f"{gen}.a.v1._restmon_routes")
        [binding] = routes.BINDINGS
        assert binding.template == template
        assert [v.field.proto for v in binding.variables] == [field]


TWO_METHODS = (
    HEADER
    + """
service Things {
  rpc GetA(Req) returns (Resp) {
    option (google.api.http) = {get: "/v1/things/{name}"};
  }
  rpc GetB(Req) returns (Resp) {
    option (google.api.http) = {get: "/v1/things/{inner.id}"};
  }
}
"""
)
DUPLICATE = (
    "duplicate route GET '/v1/things/{inner.id}': same HTTP method and shape as "
    "GET '/v1/things/{name}' of a.v1.Things.GetA"
)


def test_duplicate_routes_are_an_error_naming_both_methods(tmp_path: Path) -> None:
    response = generate_inline(tmp_path, {FILE: TWO_METHODS}, ROUTES_ONLY)
    first = f"{FILE}:{line_of(TWO_METHODS, 'things/{name}')}: a.v1.Things.GetA"
    second = f"{FILE}:{line_of(TWO_METHODS, 'things/{inner.id}')}: a.v1.Things.GetB"
    assert_rejected(
        response,
        [f"{second}: {DUPLICATE} ({first}) (the option duplicate_routes=warn accepts it)"],
    )


def test_duplicate_routes_warn_option_writes_files_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    response = generate_inline(
        tmp_path, {FILE: TWO_METHODS}, ROUTES_ONLY + ",duplicate_routes=warn"
    )
    assert response.error == ""
    names = sorted(f.name for f in response.file)
    assert names == ["a/v1/_restmon_monitor.py", "a/v1/_restmon_routes.py"]
    first = f"{FILE}:{line_of(TWO_METHODS, 'things/{name}')}: a.v1.Things.GetA"
    second = f"{FILE}:{line_of(TWO_METHODS, 'things/{inner.id}')}: a.v1.Things.GetB"
    assert capsys.readouterr().err.splitlines() == [f"{second}: warning: {DUPLICATE} ({first})"]


# Pairs of templates that are NOT duplicates (the second method's rule differs by the row).
NOT_DUPLICATES = [
    pytest.param('{get: "/v1/things/{name}"}', '{delete: "/v1/things/{name}"}', id="other-method"),
    pytest.param('{get: "/v1/things/{name}"}', '{get: "/v1/things/{name}:x"}', id="with-verb"),
    pytest.param('{get: "/v1/things/{name}"}', '{get: "/v1/things/x"}', id="literal-vs-star"),
    pytest.param('{get: "/v1/things/{name}"}', '{get: "/v1/things/{name=**}"}', id="star-vs-deep"),
]


@pytest.mark.parametrize(("rule_a", "rule_b"), NOT_DUPLICATES)
def test_routes_of_other_method_or_shape_are_not_duplicates(
    tmp_path: Path, rule_a: str, rule_b: str
) -> None:
    text = TWO_METHODS.replace('{get: "/v1/things/{name}"}', rule_a).replace(
        '{get: "/v1/things/{inner.id}"}', rule_b
    )
    response = generate_inline(tmp_path, {FILE: text}, ROUTES_ONLY)
    assert response.error == ""


SECOND_FILE = "a/v1/y.proto"
SECOND_TEXT = """\
syntax = "proto3";
package a.v1;

import "google/api/annotations.proto";
import "a/v1/x.proto";

service Others {
  rpc Make(Req) returns (Resp) {
    option (google.api.http) = {post: "/v1/others" body: "nope"};
  }
  rpc Copy(Req) returns (Resp) {
    option (google.api.http) = {get: "/v1/things/{count}"};
  }
}
"""
MANY_TEXT = (
    HEADER
    + """
service Things {
  rpc Get(Req) returns (Resp) {
    option (google.api.http) = {get: "/v1/things/{name}"};
  }
  rpc Bad(Req) returns (Resp) {
    option (google.api.http) = {get: "/v1/{tags}/x/{inner}:"};
  }
  rpc Worse(Req) returns (Resp) {
    option (google.api.http) = {get: "/v1/{tags}/y/{inner}" response_body: "nope"};
  }
}
"""
)


def test_every_problem_of_a_run_is_reported(tmp_path: Path) -> None:
    response = generate_inline(tmp_path, {FILE: MANY_TEXT, SECOND_FILE: SECOND_TEXT}, ROUTES_ONLY)

    def x(needle: str, method: str) -> str:
        return f"{FILE}:{line_of(MANY_TEXT, needle)}: a.v1.Things.{method}"

    def y(needle: str, method: str) -> str:
        return f"{SECOND_FILE}:{line_of(SECOND_TEXT, needle)}: a.v1.Others.{method}"

    worse = f"{x('y/{inner}', 'Worse')}: template '/v1/{{tags}}/y/{{inner}}':"
    verb_at = len("/v1/{tags}/x/{inner}")
    assert_rejected(
        response,
        [
            f"{x('x/{inner}', 'Bad')}: template '/v1/{{tags}}/x/{{inner}}:': "
            f"empty custom verb after ':' at position {verb_at}",
            f"{worse} variable 'tags' ends at 'tags', which is repeated",
            f"{worse} variable 'inner' must end at a scalar, enum or wrapper field, "
            "but 'inner' is a message of type a.v1.Inner",
            f"{worse} response_body 'nope' names no top-level field of a.v1.Resp",
            f"{y('body', 'Make')}: template '/v1/others': "
            "body 'nope' names no top-level field of a.v1.Req",
            f"{y('{count}', 'Copy')}: duplicate route GET '/v1/things/{{count}}': same HTTP "
            "method and shape as GET '/v1/things/{name}' of a.v1.Things.Get "
            f"({x('things/{name}', 'Get')}) (the option duplicate_routes=warn accepts it)",
        ],
    )


def test_protoc_fails_with_the_message_and_writes_nothing(tmp_path: Path) -> None:
    text = one_method(get("/v1/{name"))
    write_protos(tmp_path / "src", {FILE: text})
    out = tmp_path / "out"
    out.mkdir()
    result = protoc(
        [
            f"-I{tmp_path / 'src'}",
            f"--plugin=protoc-gen-restmon={restmon_plugin()}",
            f"--restmon_out={out}",
            f"--restmon_opt={ROUTES_ONLY}",
            FILE,
        ]
    )
    assert result.returncode != 0
    message = f"{FILE}:{line_of(text, OPTION)}: {METHOD}: template '/v1/{{name': "
    assert message + "unbalanced '{' at position 4" in result.stderr
    assert list(out.iterdir()) == []


def test_betterproto_failure_is_a_generation_error_naming_the_package(tmp_path: Path) -> None:
    legacy = (
        'syntax = "proto2";\npackage legacy.v1;\n'
        "message Old { optional group Result = 1 { optional string url = 2; } }\n"
    )
    response = generate_inline(tmp_path, {"legacy/v1/old.proto": legacy})
    assert not response.file
    assert response.error.startswith("legacy.v1: betterproto, package 'legacy.v1': ")
    assert "TYPE_GROUP" in response.error
    assert "internal error" not in response.error
