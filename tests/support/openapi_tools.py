"""Test helpers for the OpenAPI builder: files and compiled bindings from a protoc request,
the document validated, and JSON Schema validators for its components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf.compiler.plugin_pb2 import CodeGeneratorRequest
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from protoc_gen_restmon.plugin.bindings import Problems, collect_bindings, method_sites
from protoc_gen_restmon.plugin.descriptors import DescriptorIndex
from protoc_gen_restmon.plugin.generate import packages_to_generate
from protoc_gen_restmon.plugin.http_config import HttpConfig
from protoc_gen_restmon.plugin.options import parse_options
from protoc_gen_restmon.runtime.openapi import build_document
from protoc_gen_restmon.runtime.specs import Binding
from tests.support.protoc_tools import capture_request, write_protos

DOCUMENT_URI = "urn:restmon:openapi"


def compiled(raw_request: bytes) -> tuple[list[FileDescriptorProto], list[Binding]]:
    """Every file of the request (dependencies first) and the bindings the plugin compiles."""
    request = CodeGeneratorRequest.FromString(raw_request)
    options = parse_options(request.parameter)
    index = DescriptorIndex.build(request.proto_file)
    packages = packages_to_generate(request)
    sites = [site for files in packages.values() for f in files for site in method_sites(index, f)]
    problems = Problems()
    by_service = collect_bindings(
        index,
        sites,
        HttpConfig(),
        unbound_methods=options.generate_unbound_methods,
        pydantic=False,
        problems=problems,
    )
    problems.raise_if_any()
    bindings = [binding for group in by_service.values() for binding in group]
    return list(request.proto_file), bindings


def compile_inline(
    tmp_path: Path, protos: dict[str, str], parameter: str = ""
) -> tuple[list[FileDescriptorProto], list[Binding]]:
    src = tmp_path / "src"
    names = write_protos(src, protos)
    return compiled(capture_request(tmp_path, [src], names, parameter))


def valid_document(
    files: list[FileDescriptorProto], bindings: list[Binding], **options: Any
) -> dict[str, Any]:
    """`build_document(...)`, checked by openapi-spec-validator (OpenAPI 3.1)."""
    document = build_document(files, bindings, **options)
    validate(document)
    return document


def validator(document: dict[str, Any], component: str) -> Draft202012Validator:
    """A Draft 2020-12 validator of `#/components/schemas/<component>`, refs resolved."""
    return schema_validator(document, {"$ref": f"{DOCUMENT_URI}#/components/schemas/{component}"})


def schema_validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of `schema`, whose refs (`#/components/...`) point into `document`."""
    resource: Resource[Any] = DRAFT202012.create_resource(document)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return Draft202012Validator(_absolute(schema), registry=registry)


def _absolute(schema: Any) -> Any:
    """Local refs `#/…` of an inline schema taken out of the document, made absolute."""
    if isinstance(schema, dict):
        return {
            key: (DOCUMENT_URI + value)
            if key == "$ref" and isinstance(value, str) and value.startswith("#")
            else _absolute(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute(item) for item in schema]
    return schema


# --- The every-type proto behind an HTTP binding, with the example protos ------------------------

ECHO_PROTO = """\
syntax = "proto3";

package codectest.v1;

import "codectest/v1/all_types.proto";
import "google/api/annotations.proto";

service EchoService {
  rpc Echo(AllTypes) returns (AllTypes) {
    option (google.api.http) = {post: "/v1/echo" body: "*"};
  }
}
"""


def codec_request(scratch: Path) -> bytes:
    """protoc's request for the example protos plus the every-type proto and its service."""
    from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS
    from tests.support.runtime_fixtures import ALL_TYPES_FILE, ALL_TYPES_PROTO

    extra = scratch / "extra"
    names = write_protos(
        extra, {ALL_TYPES_FILE: ALL_TYPES_PROTO, "codectest/v1/echo.proto": ECHO_PROTO}
    )
    return capture_request(scratch, [PROTOS, extra], [*EXAMPLE_FILES, *names])


def inline_refs(schema: Any, document: dict[str, Any], budget: int = 3) -> Any:
    """`schema` with its `$ref`s replaced by the components they name, for generators that do
    not follow references; past `budget` nested references (recursion) a reference becomes
    `false` (nothing), and the Any component too (its `@type` must name a known type)."""
    if isinstance(schema, list):
        return [inline_refs(item, document, budget) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if budget == 0 or name.startswith("google.protobuf.Any"):
            return False
        return inline_refs(document["components"]["schemas"][name], document, budget - 1)
    return {key: inline_refs(value, document, budget) for key, value in schema.items()}
