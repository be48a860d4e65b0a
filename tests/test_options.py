"""Plugin options: what parse_options accepts and rejects, and what each option changes."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from protoc_gen_restmon.plugin.errors import GenerationError
from protoc_gen_restmon.plugin.options import Options, parse_options
from protoc_gen_restmon.runtime.specs import FieldPath
from tests.support.protoc_tools import generate_inline, imported_output

ALL = frozenset({"dataclasses", "routes", "monitor"})

VALID_OPTIONS = [
    pytest.param("", Options(), id="empty"),
    pytest.param(" , ,", Options(), id="only-separators"),
    pytest.param("outputs=routes", Options(outputs=frozenset({"routes"})), id="outputs-one"),
    pytest.param(
        "outputs=routes+monitor",
        Options(outputs=frozenset({"routes", "monitor"})),
        id="outputs-two",
    ),
    pytest.param("outputs=monitor+dataclasses+routes", Options(outputs=ALL), id="outputs-all"),
    pytest.param(
        "outputs=monitor+monitor", Options(outputs=frozenset({"monitor"})), id="outputs-repeated"
    ),
    pytest.param(
        "pydantic_dataclasses",
        Options(betterproto=("pydantic_dataclasses",)),
        id="pydantic-dataclasses",
    ),
    pytest.param("typing.root", Options(betterproto=("typing.root",)), id="typing-root"),
    pytest.param(
        "typing.310,INCLUDE_GOOGLE,pydantic_dataclasses",
        Options(betterproto=("typing.310", "INCLUDE_GOOGLE", "pydantic_dataclasses")),
        id="passthrough-keeps-order",
    ),
    pytest.param(
        "generate_unbound_methods", Options(generate_unbound_methods=True), id="unbound-flag"
    ),
    pytest.param(
        "generate_unbound_methods=true", Options(generate_unbound_methods=True), id="unbound-true"
    ),
    pytest.param(
        "generate_unbound_methods=TRUE", Options(generate_unbound_methods=True), id="unbound-TRUE"
    ),
    pytest.param(
        "generate_unbound_methods=1", Options(generate_unbound_methods=True), id="unbound-1"
    ),
    pytest.param(
        "generate_unbound_methods=false",
        Options(generate_unbound_methods=False),
        id="unbound-false",
    ),
    pytest.param(
        "generate_unbound_methods,generate_unbound_methods=no",
        Options(generate_unbound_methods=False),
        id="unbound-last-wins",
    ),
    pytest.param(
        "http_config=/etc/api/service.yaml",
        Options(http_config="/etc/api/service.yaml"),
        id="http-config",
    ),
    pytest.param("duplicate_routes=warn", Options(duplicate_routes="warn"), id="duplicates-warn"),
    pytest.param(
        "duplicate_routes=error", Options(duplicate_routes="error"), id="duplicates-error"
    ),
    pytest.param(
        "fully_decode_reserved_expansion",
        Options(fully_decode_reserved_expansion=True),
        id="fully-decode-bare",
    ),
    pytest.param(
        "fully_decode_reserved_expansion=false",
        Options(fully_decode_reserved_expansion=False),
        id="fully-decode-false",
    ),
    pytest.param("", Options(fully_decode_reserved_expansion=None), id="fully-decode-absent"),
    pytest.param(
        "outputs=routes+openapi",
        Options(outputs=frozenset({"routes", "openapi"})),
        id="outputs-openapi",
    ),
    pytest.param(
        "outputs=openapi,openapi_merge",
        Options(outputs=frozenset({"openapi"}), openapi_merge=True),
        id="openapi-merge-bare",
    ),
    pytest.param(
        "outputs=openapi,openapi_merge=false",
        Options(outputs=frozenset({"openapi"})),
        id="openapi-merge-false",
    ),
    pytest.param("format=none", Options(black=False), id="format-none"),
    pytest.param("format=black", Options(), id="format-black"),
    pytest.param(
        " outputs=routes , typing.direct , generate_unbound_methods ",
        Options(
            outputs=frozenset({"routes"}),
            betterproto=("typing.direct",),
            generate_unbound_methods=True,
        ),
        id="spaces-around-items",
    ),
]


@pytest.mark.parametrize(("parameter", "expected"), VALID_OPTIONS)
def test_parse_options_accepts(parameter: str, expected: Options) -> None:
    assert parse_options(parameter) == expected


def test_parse_options_passes_betterproto_flags_through_joined() -> None:
    options = parse_options("outputs=routes,pydantic_dataclasses,typing.root")
    assert options.betterproto_parameter == "pydantic_dataclasses,typing.root"
    assert options.pydantic


KNOWN = (
    "outputs=dataclasses+routes+monitor+openapi, generate_unbound_methods[=true|false], "
    "http_config=FILE.yaml, duplicate_routes=error|warn, "
    "fully_decode_reserved_expansion[=true|false], openapi_merge[=true|false], "
    "format=black|none, "
    "pydantic_dataclasses, INCLUDE_GOOGLE, typing.direct, typing.root, typing.310"
)
OUTPUTS_HELP = "choose one or more of dataclasses+routes+monitor+openapi joined by '+'"

BAD_OPTIONS = [
    pytest.param("outputs=", f"outputs='': {OUTPUTS_HELP}", id="outputs-empty"),
    pytest.param("outputs=+", f"outputs='+': {OUTPUTS_HELP}", id="outputs-only-plus"),
    pytest.param(
        "outputs=routes+grpc", f"outputs='routes+grpc': {OUTPUTS_HELP}", id="outputs-unknown"
    ),
    pytest.param("outputs", f"unknown option 'outputs'; known: {KNOWN}", id="outputs-no-value"),
    pytest.param(
        "typing.root,typing.310",
        "give at most one of typing.direct, typing.root, typing.310",
        id="two-typing-options",
    ),
    pytest.param(
        "generate_unbound_methods=bad",
        "generate_unbound_methods='bad': expected true or false",
        id="unbound-bad-bool",
    ),
    pytest.param(
        "generate_unbound_methods=",
        "generate_unbound_methods='': expected true or false",
        id="unbound-empty-value",
    ),
    pytest.param("format=yapf", "format='yapf': expected black or none", id="format-unknown"),
    pytest.param(
        "openapi_merge",
        "openapi_merge needs the openapi output: outputs=…+openapi",
        id="openapi-merge-without-openapi",
    ),
    pytest.param(
        "outputs=openapi,openapi_merge=all",
        "openapi_merge='all': expected true or false",
        id="openapi-merge-bad-bool",
    ),
    pytest.param(
        "fully_decode_reserved_expansion=maybe",
        "fully_decode_reserved_expansion='maybe': expected true or false",
        id="fully-decode-bad-bool",
    ),
    pytest.param(
        "http_config=", "http_config needs a file name: http_config=FILE.yaml", id="http-empty"
    ),
    pytest.param(
        "http_config", "http_config needs a file name: http_config=FILE.yaml", id="http-no-value"
    ),
    pytest.param(
        "duplicate_routes=ignore",
        "duplicate_routes='ignore': expected error or warn",
        id="duplicates-bad-value",
    ),
    pytest.param(
        "duplicate_routes", "duplicate_routes='': expected error or warn", id="duplicates-no-value"
    ),
    pytest.param(
        "pydantic_dataclasses=true",
        f"unknown option 'pydantic_dataclasses=true'; known: {KNOWN}",
        id="flag-with-value",
    ),
    pytest.param(
        "outputs=routes,frobnicate",
        f"unknown option 'frobnicate'; known: {KNOWN}",
        id="unknown-option",
    ),
    pytest.param("typing.311", f"unknown option 'typing.311'; known: {KNOWN}", id="typing-311"),
]


@pytest.mark.parametrize(("parameter", "message"), BAD_OPTIONS)
def test_parse_options_rejects_with_message(parameter: str, message: str) -> None:
    with pytest.raises(GenerationError) as caught:
        parse_options(parameter)
    assert str(caught.value) == f"--restmon_opt: {message}"


# --- Through the plugin ---

PROTO = """\
syntax = "proto3";
package a.v1;

import "google/api/annotations.proto";
import "google/protobuf/empty.proto";

message Req {
  string name = 1;
}

service Things {
  rpc Annotated(Req) returns (google.protobuf.Empty) {
    option (google.api.http) = {get: "/v1/things/{name}"};
  }
  rpc Plain(Req) returns (Req);
  rpc Sync(stream Req) returns (stream Req);
}
"""
OTHER_PACKAGE = """\
syntax = "proto3";
package b.v1;

message Other {
  string id = 1;
}
"""


def test_bad_option_fails_the_run_with_its_message(tmp_path: Path) -> None:
    response = generate_inline(tmp_path, {"a/v1/x.proto": PROTO}, "outputs=routes,duplicate=warn")
    assert response.error == f"--restmon_opt: unknown option 'duplicate=warn'; known: {KNOWN}"
    assert list(response.file) == []


OUTPUT_FILES = [
    pytest.param("routes", ["a/v1/_restmon_routes.py", "b/v1/_restmon_routes.py"], id="routes"),
    pytest.param("monitor", ["a/v1/_restmon_monitor.py", "b/v1/_restmon_monitor.py"], id="monitor"),
    pytest.param(
        "routes+monitor",
        [
            "a/v1/_restmon_monitor.py",
            "a/v1/_restmon_routes.py",
            "b/v1/_restmon_monitor.py",
            "b/v1/_restmon_routes.py",
        ],
        id="routes+monitor",
    ),
]


@pytest.mark.parametrize(("outputs", "expected"), OUTPUT_FILES)
def test_outputs_option_selects_the_modules_written(
    tmp_path: Path, outputs: str, expected: list[str]
) -> None:
    files = {"a/v1/x.proto": PROTO, "b/v1/y.proto": OTHER_PACKAGE}
    response = generate_inline(tmp_path, files, f"outputs={outputs}")
    assert response.error == ""
    assert sorted(f.name for f in response.file) == expected


def test_outputs_dataclasses_writes_no_restmon_module(tmp_path: Path) -> None:
    pytest.importorskip("protoc_gen_restmon.plugin.dataclasses")
    response = generate_inline(tmp_path, {"a/v1/x.proto": PROTO}, "outputs=dataclasses")
    assert response.error == ""
    names = {f.name for f in response.file}
    assert "a/v1/__init__.py" in names
    assert not any("_restmon_" in name for name in names)


def _bindings(tmp_path: Path, parameter: str) -> list[tuple[str, str, str, FieldPath | None]]:
    response = generate_inline(tmp_path, {"a/v1/x.proto": PROTO}, parameter)
    assert response.error == ""
    with imported_output(response, tmp_path) as gen:
        routes = importlib.import_module(f"{gen}.a.v1._restmon_routes")
        return [(b.method, b.http_method, b.template, b.body) for b in routes.BINDINGS]


ANNOTATED = ("Annotated", "GET", "/v1/things/{name}", None)
BODY_ALL = FieldPath(("*",), ("*",))

UNBOUND = [
    pytest.param("outputs=routes", [ANNOTATED], id="off-by-default"),
    pytest.param("outputs=routes,generate_unbound_methods=false", [ANNOTATED], id="false"),
    pytest.param(
        "outputs=routes,generate_unbound_methods",
        [
            ANNOTATED,
            ("Plain", "POST", "/a.v1.Things/Plain", BODY_ALL),
            ("Sync", "POST", "/a.v1.Things/Sync", BODY_ALL),
        ],
        id="on",
    ),
]


@pytest.mark.parametrize(("parameter", "expected"), UNBOUND)
def test_generate_unbound_methods_binds_only_methods_without_a_rule(
    tmp_path: Path, parameter: str, expected: list[tuple[str, str, str, FieldPath | None]]
) -> None:
    assert _bindings(tmp_path, parameter) == expected


def test_unbound_binding_is_one_literal_segment_per_name_part(tmp_path: Path) -> None:
    response = generate_inline(
        tmp_path, {"a/v1/x.proto": PROTO}, "outputs=routes,generate_unbound_methods"
    )
    with imported_output(response, tmp_path) as gen:
        routes = importlib.import_module(f"{gen}.a.v1._restmon_routes")
        plain = next(b for b in routes.BINDINGS if b.method == "Plain")
    assert [(s.kind.value, s.value) for s in plain.segments] == [
        ("literal", "a.v1.Things"),
        ("literal", "Plain"),
    ]
    assert (plain.variables, plain.verb, plain.response_body) == ((), "", None)


PYDANTIC = [
    pytest.param("outputs=routes", "betterproto.lib.google.protobuf", id="plain"),
    pytest.param(
        "outputs=routes,pydantic_dataclasses",
        "betterproto.lib.pydantic.google.protobuf",
        id="pydantic",
    ),
]


@pytest.mark.parametrize(("parameter", "module"), PYDANTIC)
def test_pydantic_flag_reaches_well_known_type_references(
    tmp_path: Path, parameter: str, module: str
) -> None:
    response = generate_inline(tmp_path, {"a/v1/x.proto": PROTO}, parameter)
    with imported_output(response, tmp_path) as gen:
        routes = importlib.import_module(f"{gen}.a.v1._restmon_routes")
        [binding] = routes.BINDINGS
    assert (binding.response.module, binding.response.name) == (module, "Empty")
    assert binding.request.module == "."
