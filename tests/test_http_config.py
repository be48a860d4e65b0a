"""HttpRules from a gRPC API Configuration YAML file, given with `http_config=FILE`."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from google.protobuf.compiler.plugin_pb2 import CodeGeneratorResponse

from protoc_gen_restmon.runtime.specs import Binding, FieldPath
from tests.support.protoc_tools import generate_inline, imported_output, line_of

FILE = "a/v1/x.proto"
PROTO = """\
syntax = "proto3";
package a.v1;

message GetThingRequest {
  string name = 1;
}

message Thing {
  string name = 1;
  string title = 2 [json_name = "heading"];
}

service Things {
  rpc GetThing(GetThingRequest) returns (Thing);
  rpc UpdateThing(Thing) returns (Thing);
}
"""
ANNOTATED_PROTO = """\
syntax = "proto3";
package a.v1;

import "google/api/annotations.proto";

message GetThingRequest {
  string name = 1;
}

message Thing {
  string name = 1;
  string title = 2 [json_name = "heading"];
}

service Things {
  rpc GetThing(GetThingRequest) returns (Thing) {
    option (google.api.http) = {get: "/v1/{name=things/*}"};
  }
  rpc UpdateThing(Thing) returns (Thing);
}
"""
CONFIG = """\
type: google.api.Service
config_version: 3
name: things.example.com
http:
  fully_decode_reserved_expansion: true
  rules:
  - selector: a.v1.Things.GetThing
    get: /v1/{name=things/**}
    additional_bindings:
    - get: /v1/{name=others/*}
    - custom:
        kind: HEAD
        path: /v1/{name=things/*}
  - selector: a.v1.Things.UpdateThing
    patch: /v1/{name=things/*}
    body: "*"
    response_body: title
"""

BODY_ALL = FieldPath(("*",), ("*",))


def run_with_config(
    tmp_path: Path, yaml_text: str, proto: str = PROTO, extra: str = ""
) -> tuple[CodeGeneratorResponse, str]:
    config = tmp_path / "config" / "service.yaml"
    config.parent.mkdir()
    config.write_text(yaml_text)
    parameter = f"outputs=routes+monitor,http_config={config}{extra}"
    return generate_inline(tmp_path, {FILE: proto}, parameter), str(config)


def bindings_of(response: CodeGeneratorResponse, root: Path) -> tuple[Binding, ...]:
    assert response.error == ""
    with imported_output(response, root) as gen:
        bindings: tuple[Binding, ...] = importlib.import_module(
            f"{gen}.a.v1._restmon_routes"
        ).BINDINGS
    return bindings


def summary(binding: Binding) -> tuple[object, ...]:
    return (
        binding.method,
        binding.http_method,
        binding.template,
        binding.body,
        binding.response_body,
        binding.fully_decode_reserved_expansion,
    )


def test_yaml_rules_bind_an_unannotated_proto(tmp_path: Path) -> None:
    response, _ = run_with_config(tmp_path, CONFIG)
    assert [summary(b) for b in bindings_of(response, tmp_path)] == [
        ("GetThing", "GET", "/v1/{name=things/**}", None, None, True),
        ("GetThing", "GET", "/v1/{name=others/*}", None, None, True),
        ("GetThing", "HEAD", "/v1/{name=things/*}", None, None, True),
        (
            "UpdateThing",
            "PATCH",
            "/v1/{name=things/*}",
            BODY_ALL,
            FieldPath(("title",), ("heading",)),
            True,
        ),
    ]


def test_yaml_rule_variables_resolve_against_the_request(tmp_path: Path) -> None:
    response, _ = run_with_config(tmp_path, CONFIG)
    first = bindings_of(response, tmp_path)[0]
    [variable] = first.variables
    assert (variable.field, variable.start, variable.end, variable.reserved_expansion) == (
        FieldPath(("name",), ("name",)),
        1,
        3,
        True,
    )
    assert (first.service, first.request.name, first.response.name) == (
        "a.v1.Things",
        "GetThingRequest",
        "Thing",
    )


FULLY_DECODE = [
    pytest.param("  fully_decode_reserved_expansion: true\n", True, id="true"),
    pytest.param("  fully_decode_reserved_expansion: false\n", False, id="false"),
    pytest.param("", False, id="absent"),
]


@pytest.mark.parametrize(("line", "expected"), FULLY_DECODE)
def test_fully_decode_flag_follows_the_yaml(tmp_path: Path, line: str, expected: bool) -> None:
    text = f"http:\n{line}  rules:\n  - selector: a.v1.Things.GetThing\n    get: /v1/{{name=**}}\n"
    response, _ = run_with_config(tmp_path, text)
    [binding] = bindings_of(response, tmp_path)
    assert binding.fully_decode_reserved_expansion is expected


def test_fully_decode_flag_reaches_annotated_rules(tmp_path: Path) -> None:
    """A field of google.api.Http: it holds for every binding of the run (§1)."""
    text = (
        "http:\n  fully_decode_reserved_expansion: true\n  rules:\n"
        "  - selector: a.v1.Things.UpdateThing\n    put: /v1/{name=things/*}\n    body: '*'\n"
    )
    response, _ = run_with_config(tmp_path, text, ANNOTATED_PROTO)
    assert [
        (b.method, b.fully_decode_reserved_expansion) for b in bindings_of(response, tmp_path)
    ] == [
        ("GetThing", True),
        ("UpdateThing", True),
    ]


# (the YAML's flag or None for no YAML, the plugin option or None, what every binding gets)
FLAG_SOURCES = [
    pytest.param(None, None, False, id="neither"),
    pytest.param(None, "", True, id="bare-option"),
    pytest.param(None, "=true", True, id="option-true"),
    pytest.param(True, "=false", False, id="option-false-beats-yaml"),
    pytest.param(False, "=true", True, id="option-true-beats-yaml"),
    pytest.param(True, None, True, id="yaml-alone"),
]


@pytest.mark.parametrize(("yaml_flag", "option", "expected"), FLAG_SOURCES)
def test_fully_decode_plugin_option_wins_over_the_yaml(
    tmp_path: Path, yaml_flag: bool | None, option: str | None, expected: bool
) -> None:
    parameter = "outputs=routes"
    if option is not None:
        parameter += f",fully_decode_reserved_expansion{option}"
    if yaml_flag is not None:
        config = tmp_path / "service.yaml"
        config.write_text(f"http:\n  fully_decode_reserved_expansion: {str(yaml_flag).lower()}\n")
        parameter += f",http_config={config}"
    response = generate_inline(tmp_path, {FILE: ANNOTATED_PROTO}, parameter)
    assert {b.fully_decode_reserved_expansion for b in bindings_of(response, tmp_path)} == {
        expected
    }


def assert_rejected(response: CodeGeneratorResponse, expected: list[str]) -> None:
    assert response.error.splitlines() == expected
    assert list(response.file) == []


def test_yaml_rule_replaces_the_annotation_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    response, config = run_with_config(tmp_path, CONFIG, ANNOTATED_PROTO)
    templates = [(b.method, b.http_method, b.template) for b in bindings_of(response, tmp_path)]
    assert templates == [
        ("GetThing", "GET", "/v1/{name=things/**}"),
        ("GetThing", "GET", "/v1/{name=others/*}"),
        ("GetThing", "HEAD", "/v1/{name=things/*}"),
        ("UpdateThing", "PATCH", "/v1/{name=things/*}"),
    ]
    yaml_line = line_of(CONFIG, "selector: a.v1.Things.GetThing")
    proto_line = line_of(ANNOTATED_PROTO, "option (google.api.http)")
    assert capsys.readouterr().err.splitlines() == [
        f"{config}:{yaml_line}: a.v1.Things.GetThing: note: this rule replaces the "
        f"google.api.http annotation of a.v1.Things.GetThing at {FILE}:{proto_line}"
    ]


def test_selector_matching_no_method_is_an_error_with_its_yaml_line(tmp_path: Path) -> None:
    text = CONFIG.replace("a.v1.Things.UpdateThing", "a.v1.Things.Missing")
    response, config = run_with_config(tmp_path, text)
    line = line_of(text, "selector: a.v1.Things.Missing")
    assert_rejected(
        response,
        [
            f"{config}:{line}: a.v1.Things.Missing: "
            "selector 'a.v1.Things.Missing' matches no method of this run"
        ],
    )


HTTP_RULE_FIELDS = (
    "['selector', 'get', 'put', 'post', 'delete', 'patch', 'custom', 'body', 'responseBody', "
    "'additionalBindings']"
)


def test_unknown_key_in_a_rule_is_an_error_naming_the_key(tmp_path: Path) -> None:
    text = CONFIG.replace("    response_body: title\n", "    response_body: title\n    verb: x\n")
    response, config = run_with_config(tmp_path, text)
    line = line_of(text, "selector: a.v1.Things.UpdateThing")
    assert_rejected(
        response,
        [
            f"{config}:{line}: a.v1.Things.UpdateThing: not a google.api.HttpRule: "
            'Message type "google.api.HttpRule" has no field named "verb" at "HttpRule". '
            f'Available Fields(except extensions): "{HTTP_RULE_FIELDS}"'
        ],
    )


# (YAML text, message after "<config path>"; a leading ":N" is the line)
BAD_CONFIGS = [
    pytest.param(
        "http:\n  rules:\n  - get: /v1/things\n",
        ":3: rule #1: each rule needs a `selector: package.Service.Method`",
        id="rule-without-selector",
    ),
    pytest.param(
        "http:\n  rules:\n  - selector: a.v1.Things.GetThing\n    get: [/v1\n",
        ":5: not valid YAML: while parsing a flow sequence: "
        "expected ',' or ']', but got '<stream end>'",
        id="malformed-yaml",
    ),
    pytest.param("name: x\n", ": no `http:` section with `rules:`", id="no-http-section"),
    pytest.param(
        "http:\n  rule:\n  - selector: a.v1.Things.GetThing\n",
        ": unknown key(s) ['rule'] in `http:`; known: rules, fully_decode_reserved_expansion",
        id="unknown-http-key",
    ),
    pytest.param(
        "http:\n  rules:\n    selector: a.v1.Things.GetThing\n",
        ": `http.rules` must be a list",
        id="rules-not-a-list",
    ),
    pytest.param(
        "http:\n  fully_decode_reserved_expansion: 'yes'\n",
        ": `http.fully_decode_reserved_expansion` must be true or false, not 'yes'",
        id="fully-decode-not-bool",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_config_file_is_an_error_naming_it(tmp_path: Path, text: str, message: str) -> None:
    response, config = run_with_config(tmp_path, text)
    assert_rejected(response, [config + message])


UNREADABLE = [
    pytest.param("missing.yaml", "No such file or directory", id="missing"),
    pytest.param("", "Is a directory", id="directory"),
]


@pytest.mark.parametrize(("name", "reason"), UNREADABLE)
def test_unreadable_config_file_is_an_error(tmp_path: Path, name: str, reason: str) -> None:
    path = tmp_path / name
    response = generate_inline(tmp_path, {FILE: PROTO}, f"outputs=routes,http_config={path}")
    assert_rejected(response, [f"{path}: cannot read http_config: {reason}"])


MIXIN_USER = """\
syntax = "proto3";
package a.v1;

import "google/cloud/location/locations.proto";

message Thing {
  google.cloud.location.Location where = 1;
}
"""
MIXIN_CONFIG = """\
apis:
- name: a.v1.Things
- name: google.cloud.location.Locations
http:
  rules:
  - selector: google.cloud.location.Locations.GetLocation
    get: /v1/{name=projects/*/locations/*}
"""


def test_selector_of_an_imported_only_mixin_says_to_give_its_file(tmp_path: Path) -> None:
    response, config = run_with_config(tmp_path, MIXIN_CONFIG, MIXIN_USER)
    line = line_of(MIXIN_CONFIG, "selector:")
    assert_rejected(
        response,
        [
            f"{config}:{line}: google.cloud.location.Locations.GetLocation: selector "
            "'google.cloud.location.Locations.GetLocation' matches no method of this run: "
            "google.cloud.location.Locations (listed under `apis:`) is declared in "
            "google/cloud/location/locations.proto, which is only imported; give that file to "
            "protoc too, so that its package gets the routes"
        ],
    )


def test_two_yaml_rules_for_one_method_are_an_error(tmp_path: Path) -> None:
    text = CONFIG + "  - selector: a.v1.Things.GetThing\n    get: /v2/{name=things/*}\n"
    response, config = run_with_config(tmp_path, text)
    first = line_of(CONFIG, "selector: a.v1.Things.GetThing")
    second = len(text.splitlines()) - 1
    assert_rejected(
        response,
        [
            f"{config}:{second}: a.v1.Things.GetThing: a second rule for a.v1.Things.GetThing "
            f"(the first: line {first})"
        ],
    )
