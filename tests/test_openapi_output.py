"""The plugin's openapi output: which files, what reaches the builder, merge, and errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from protoc_gen_restmon.plugin.main import run
from protoc_gen_restmon.runtime import openapi
from protoc_gen_restmon.runtime.specs import Binding
from tests.support.protoc_tools import (
    BUNDLED_PROTOC,
    EXAMPLE_FILES,
    PROTOS,
    debian_protoc,
    generate_inline,
    include_paths,
    line_of,
    restmon_plugin,
    with_parameter,
)

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

THINGS = """\
syntax = "proto3";
package {package};
import "google/api/annotations.proto";
message Thing {{ string name = 1; string id = 2; }}
service Things {{
  rpc GetThing(Thing) returns (Thing) {{
    option (google.api.http) = {{get: "{template}"}};
  }}
  rpc Bad(Thing) returns (Thing) {{
    option (google.api.http) = {{post: "/{package}/bad" body: "*"}};
  }}
}}
"""


def things(package: str, template: str) -> dict[str, str]:
    path = package.replace(".", "/") + "/things.proto"
    return {path: THINGS.format(package=package, template=template)}


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    ]


def assert_valid(document: dict[str, Any]) -> None:
    errors = [str(e.message) for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert not errors, errors[:5]


@pytest.fixture(scope="module")
def openapi_request(example_request: bytes) -> bytes:
    return with_parameter(example_request, "outputs=routes+openapi")


@pytest.fixture(scope="module")
def openapi_files(openapi_request: bytes) -> dict[str, str]:
    response = run(openapi_request)
    assert not response.error, response.error
    return {f.name: f.content for f in response.file}


def test_openapi_is_not_a_default_output(example_files: dict[str, str]) -> None:
    assert not [name for name in example_files if name.endswith(".json")]


def test_one_document_per_package_with_a_binding_beside_its_route_module(
    openapi_files: dict[str, str],
) -> None:
    documents = sorted(name for name in openapi_files if name.endswith(".json"))
    assert documents == ["bookstore/v1/openapi.json"]  # common.v1 has no service
    assert "bookstore/v1/_restmon_routes.py" in openapi_files


def test_the_package_document_is_valid_openapi_3_1_with_an_operation_per_binding(
    openapi_files: dict[str, str], example_files: dict[str, str]
) -> None:
    document = json.loads(openapi_files["bookstore/v1/openapi.json"])
    assert document["openapi"] == "3.1.0"
    assert (document["info"]["title"], document["info"]["version"]) == ("bookstore.v1", "v1")
    assert_valid(document)
    routes = example_files["bookstore/v1/_restmon_routes.py"]
    assert len(operations(document)) == routes.count("Binding(")


def test_the_document_is_deterministic_text_ending_in_a_newline(
    openapi_request: bytes, openapi_files: dict[str, str]
) -> None:
    again = {f.name: f.content for f in run(openapi_request).file}
    text = openapi_files["bookstore/v1/openapi.json"]
    assert again["bookstore/v1/openapi.json"] == text
    assert text.endswith("}\n") and json.loads(text)


def installed_plugin_flags(out: Path, parameter: str) -> list[str]:
    return [
        f"--plugin=protoc-gen-restmon={restmon_plugin()}",
        f"--restmon_out={out}",
        f"--restmon_opt={parameter}",
    ]


def debian_protoc_command() -> list[str]:
    found = debian_protoc()
    if found is None:
        pytest.skip("Debian's protoc (protobuf-compiler) is not on PATH")
    return [found]


PROTOCS = [
    pytest.param(debian_protoc_command, id="debian-protoc"),
    pytest.param(lambda: list(BUNDLED_PROTOC), id="grpc_tools"),
]


@pytest.mark.parametrize("protoc_command", PROTOCS)
def test_real_protoc_writes_the_same_document(
    protoc_command: Callable[[], list[str]], tmp_path: Path, openapi_files: dict[str, str]
) -> None:
    command = [
        *protoc_command(),
        *(f"-I{p}" for p in [PROTOS, *map(Path, include_paths())]),
        *installed_plugin_flags(tmp_path, "outputs=openapi"),
        *EXAMPLE_FILES,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["bookstore/v1/openapi.json"]
    text = (tmp_path / "bookstore/v1/openapi.json").read_text()
    assert text == openapi_files["bookstore/v1/openapi.json"]


def test_openapi_merge_writes_one_document_with_every_package(tmp_path: Path) -> None:
    files = {**things("a.v1", "/a/{name=things/*}"), **things("b.v1", "/b/{name=things/*}")}
    response = generate_inline(tmp_path, files, "outputs=openapi,openapi_merge")
    assert not response.error, response.error
    assert [f.name for f in response.file] == ["openapi.json"]
    document = json.loads(response.file[0].content)
    assert_valid(document)
    paths = {path for _, path in operations(document)}
    assert {"/a.v1/bad", "/b.v1/bad"} <= paths and len(operations(document)) == 4
    assert document["info"]["title"] == "API"  # no common package prefix


def test_openapi_merge_refuses_one_path_from_two_packages_naming_both(tmp_path: Path) -> None:
    files = {**things("a.v1", "/v1/{name=things/*}"), **things("b.v1", "/v1/{id=things/*}")}
    response = generate_inline(tmp_path, files, "outputs=openapi,openapi_merge")
    line_a = line_of(files["a/v1/things.proto"], 'get: "')
    line_b = line_of(files["b/v1/things.proto"], 'get: "')
    assert response.error == (
        f"b/v1/things.proto:{line_b}: b.v1.Things.GetThing: GET /v1/{{id=things/*}} "
        f"(package b.v1) and GET /v1/{{name=things/*}} of a.v1.Things.GetThing "
        f"(a/v1/things.proto:{line_a}, package a.v1) are the same operation GET /v1/things/{{}} "
        "in one OpenAPI document: generate without openapi_merge, or change one of the templates"
    )
    assert not response.file


def test_without_merge_the_same_path_in_two_packages_is_two_documents(tmp_path: Path) -> None:
    files = {**things("a.v1", "/v1/{name=things/*}"), **things("b.v1", "/v1/{id=things/*}")}
    response = generate_inline(tmp_path, files, "outputs=openapi")
    assert not response.error, response.error
    assert [f.name for f in response.file] == ["a/v1/openapi.json", "b/v1/openapi.json"]


class Spy:
    """Stands in for build_document: records its arguments, fails on methods named Bad."""

    def __init__(self, real: Callable[..., dict[str, Any]]) -> None:
        self.real = real
        self.calls: list[tuple[list[str], list[Binding]]] = []

    def __call__(self, files: Sequence[Any], bindings: Sequence[Binding], **kw: Any) -> Any:
        self.calls.append(([f.name for f in files], list(bindings)))
        if any(b.method == "Bad" for b in bindings):
            raise ValueError("no schema for this")
        return self.real(files, bindings, **kw)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    found = Spy(openapi.build_document)
    monkeypatch.setattr(openapi, "build_document", found)
    return found


def test_a_builder_failure_names_file_line_method_and_cause(tmp_path: Path, spy: Spy) -> None:
    files = things("a.v1", "/v1/{name=things/*}")
    response = generate_inline(tmp_path, files, "outputs=openapi")
    line = line_of(files["a/v1/things.proto"], "post: ")
    assert response.error == (
        f"a/v1/things.proto:{line}: a.v1.Things.Bad: POST /a.v1/bad: "
        "cannot describe it in OpenAPI: ValueError: no schema for this"
    )


def test_the_builder_gets_the_package_files_with_their_imports_first(
    tmp_path: Path, spy: Spy
) -> None:
    files = {
        **things("a.v1", "/v1/{name=things/*}"),
        "a/v1/more.proto": 'syntax = "proto3";\npackage a.v1;\nimport "c/v1/c.proto";\n',
        "c/v1/c.proto": 'syntax = "proto3";\npackage c.v1;\nmessage C {}\n',
    }
    generate_inline(tmp_path, files, "outputs=openapi")
    names, bindings = spy.calls[0]
    assert names.index("c/v1/c.proto") < names.index("a/v1/more.proto")
    assert {"google/api/http.proto", "a/v1/things.proto"} <= set(names)
    assert [b.method for b in bindings] == ["GetThing", "Bad"]


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        pytest.param("", False, id="default"),
        pytest.param(",fully_decode_reserved_expansion", True, id="option"),
    ],
)
def test_fully_decode_reserved_expansion_reaches_the_builder(
    tmp_path: Path, spy: Spy, parameter: str, expected: bool
) -> None:
    files = things("a.v1", "/v1/{name=things/*}")
    generate_inline(tmp_path, files, "outputs=openapi" + parameter)
    _, bindings = spy.calls[0]
    assert {b.fully_decode_reserved_expansion for b in bindings} == {expected}


def test_unbound_methods_reach_the_builder_as_bindings(tmp_path: Path, spy: Spy) -> None:
    files = {
        "u/v1/u.proto": 'syntax = "proto3";\npackage u.v1;\nmessage M {}\n'
        "service S { rpc Plain(M) returns (M); }\n"
    }
    response = generate_inline(tmp_path, files, "outputs=openapi,generate_unbound_methods")
    assert not response.error, response.error
    assert [str(b) for b in spy.calls[0][1]] == ["POST /u.v1.S/Plain u.v1.S/Plain"]
    assert [f.name for f in response.file] == ["u/v1/openapi.json"]


def test_restmon_generate_openapi_adds_the_output(
    tmp_path: Path, openapi_files: dict[str, str]
) -> None:
    restmon = restmon_plugin().with_name("restmon")
    command = [restmon, "generate", "-I", PROTOS, "-o", tmp_path, "--opt", "outputs=routes"]
    result = subprocess.run(
        [*map(str, command), "--openapi", *EXAMPLE_FILES],
        cwd=PROTOS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "bookstore/v1/openapi.json").read_text()
    assert written == openapi_files["bookstore/v1/openapi.json"]
    assert (tmp_path / "bookstore/v1/_restmon_routes.py").exists()
    assert not (tmp_path / "bookstore/v1/__init__.py").exists()  # outputs=routes kept
