"""Generated route and monitor modules of the example protos, checked against the descriptors.

Every expectation here is computed from a FileDescriptorSet that protoc writes itself
(`--descriptor_set_out --include_imports`), without any plugin code.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import re
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import betterproto
import pytest

# Imported for its side effect: upb keeps the google.api.http extension when parsing.
from google.api import annotations_pb2
from google.protobuf.descriptor_pb2 import (
    DescriptorProto,
    FileDescriptorProto,
    FileDescriptorSet,
    MethodDescriptorProto,
)

from protoc_gen_restmon.plugin.main import run
from protoc_gen_restmon.runtime.descriptor_files import ProtoFile, needed_files
from protoc_gen_restmon.runtime.specs import Binding, FieldPath, MessageRef, Segment, SegmentKind
from tests.support.protoc_tools import (
    EXAMPLE_FILES,
    PROTOS,
    capture_request,
    descriptor_set,
    generate_inline,
    imported_output,
)

# `{field.path}` or `{field.path=segments}` in a path template.
VARIABLE = re.compile(r"\{([A-Za-z_][\w.]*)(?:=([^}]*))?\}")


class Expected(NamedTuple):
    package: str
    service: str  # full name
    method: str
    http_method: str
    template: str
    body: str
    response_body: str
    request: str  # full name, no leading dot
    response: str


@pytest.fixture(scope="module")
def descriptors(tmp_path_factory: pytest.TempPathFactory) -> FileDescriptorSet:
    return descriptor_set(tmp_path_factory.mktemp("descriptors"), [PROTOS], EXAMPLE_FILES)


@pytest.fixture(scope="module")
def packages(descriptors: FileDescriptorSet) -> list[str]:
    return sorted({f.package for f in descriptors.file if f.name in EXAMPLE_FILES})


@pytest.fixture(scope="module")
def messages(descriptors: FileDescriptorSet) -> dict[str, DescriptorProto]:
    """Every message of the set by full name (no leading dot), nested ones included."""
    found: dict[str, DescriptorProto] = {}

    def add(prefix: str, message: DescriptorProto) -> None:
        found[prefix + message.name] = message
        for nested in message.nested_type:
            add(f"{prefix}{message.name}.", nested)

    for file in descriptors.file:
        for message in file.message_type:
            add(f"{file.package}." if file.package else "", message)
    return found


@pytest.fixture(scope="module")
def expected(descriptors: FileDescriptorSet) -> list[Expected]:
    """Every rule and additional binding of the example files, as written."""
    rows = []
    for file in descriptors.file:
        if file.name not in EXAMPLE_FILES:
            continue
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    kind = binding.WhichOneof("pattern")
                    custom = kind == "custom"
                    rows.append(
                        Expected(
                            package=file.package,
                            service=f"{file.package}.{service.name}",
                            method=method.name,
                            http_method=binding.custom.kind if custom else kind.upper(),
                            template=binding.custom.path if custom else getattr(binding, kind),
                            body=binding.body,
                            response_body=binding.response_body,
                            request=method.input_type.lstrip("."),
                            response=method.output_type.lstrip("."),
                        )
                    )
    assert rows, "the example protos have HTTP rules"
    return rows


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory, packages: list[str]
) -> dict[str, tuple[ModuleType, ModuleType]]:
    """(routes module, monitor module) of each package, generated with outputs=routes+monitor."""
    root = tmp_path_factory.mktemp("routes")
    response = run(capture_request(root, [PROTOS], EXAMPLE_FILES, "outputs=routes+monitor"))
    assert response.error == ""
    with imported_output(response, root) as gen:
        return {
            package: (
                importlib.import_module(f"{gen}.{package}._restmon_routes"),
                importlib.import_module(f"{gen}.{package}._restmon_monitor"),
            )
            for package in packages
        }


@pytest.fixture(scope="module")
def resolved(
    tmp_path_factory: pytest.TempPathFactory, packages: list[str]
) -> dict[str, list[ProtoFile]]:
    """Every file each package's monitor module needs, found at run time (while `gen` is the
    output of this run)."""
    root = tmp_path_factory.mktemp("resolved")
    response = run(capture_request(root, [PROTOS], EXAMPLE_FILES, "outputs=routes+monitor"))
    with imported_output(response, root) as gen:
        return {
            package: needed_files(importlib.import_module(f"{gen}.{package}._restmon_monitor"))
            for package in packages
        }


def all_bindings(generated: dict[str, tuple[ModuleType, ModuleType]]) -> list[Binding]:
    return [b for routes, _ in generated.values() for b in routes.BINDINGS]


def find(bindings: list[Binding], row: Expected) -> Binding:
    [binding] = [
        b
        for b in bindings
        if (b.service, b.method, b.http_method, b.template)
        == (row.service, row.method, row.http_method, row.template)
    ]
    return binding


def json_path(messages: dict[str, DescriptorProto], root: str, path: str) -> tuple[str, ...]:
    """The JSON names along `path` (dotted proto names) from message `root`."""
    names, message = [], messages[root]
    for name in path.split("."):
        [field] = [f for f in message.field if f.name == name]
        names.append(field.json_name)
        message = messages.get(field.type_name.lstrip("."), message)
    return tuple(names)


def test_every_rule_and_additional_binding_appears_exactly_once(
    generated: dict[str, tuple[ModuleType, ModuleType]], expected: list[Expected]
) -> None:
    def key(service: str, method: str, http_method: str, template: str) -> tuple[str, ...]:
        return (service, method, http_method, template)

    got = Counter(
        key(b.service, b.method, b.http_method, b.template) for b in all_bindings(generated)
    )
    assert got == Counter(key(*row[1:5]) for row in expected)


def test_each_package_module_holds_only_its_own_bindings(
    generated: dict[str, tuple[ModuleType, ModuleType]], expected: list[Expected]
) -> None:
    for package, (routes, _) in generated.items():
        assert package == routes.PACKAGE
        assert len(routes.BINDINGS) == sum(row.package == package for row in expected)
        assert all(b.service.startswith(package + ".") for b in routes.BINDINGS)


def field_path(messages: dict[str, DescriptorProto], root: str, path: str) -> FieldPath | None:
    if not path:
        return None
    if path == "*":
        return FieldPath(("*",), ("*",))
    return FieldPath(tuple(path.split(".")), json_path(messages, root, path))


def test_body_and_response_body_paths_and_json_names(
    generated: dict[str, tuple[ModuleType, ModuleType]],
    expected: list[Expected],
    messages: dict[str, DescriptorProto],
) -> None:
    bindings = all_bindings(generated)
    for row in expected:
        binding = find(bindings, row)
        assert binding.body == field_path(messages, row.request, row.body), row
        assert binding.response_body == field_path(messages, row.response, row.response_body), row


def test_variables_have_proto_and_json_field_paths_in_template_order(
    generated: dict[str, tuple[ModuleType, ModuleType]],
    expected: list[Expected],
    messages: dict[str, DescriptorProto],
) -> None:
    bindings = all_bindings(generated)
    for row in expected:
        written = [(m[1], m[2] or "*") for m in VARIABLE.finditer(row.template)]
        variables = find(bindings, row).variables
        assert [v.field for v in variables] == [
            FieldPath(tuple(path.split(".")), json_path(messages, row.request, path))
            for path, _ in written
        ], row
        assert [v.reserved_expansion for v in variables] == [s != "*" for _, s in written], row


def segment_text(segment: Segment) -> str:
    if segment.kind is SegmentKind.LITERAL:
        return segment.value
    return "*" if segment.kind is SegmentKind.WILDCARD else "**"


def with_verb(path: str, verb: str) -> str:
    return f"{path}:{verb}" if verb else path


def test_segments_rebuild_the_template_shape(
    generated: dict[str, tuple[ModuleType, ModuleType]], expected: list[Expected]
) -> None:
    bindings = all_bindings(generated)
    for row in expected:
        binding = find(bindings, row)
        shape = VARIABLE.sub(lambda m: m[2] or "*", row.template)
        rebuilt = "/" + "/".join(segment_text(s) for s in binding.segments)
        assert with_verb(rebuilt, binding.verb) == shape, row


def test_variable_ranges_rebuild_the_template(
    generated: dict[str, tuple[ModuleType, ModuleType]], expected: list[Expected]
) -> None:
    bindings = all_bindings(generated)
    for row in expected:
        binding = find(bindings, row)
        starts = {v.start: v for v in binding.variables}
        parts, i = [], 0
        while i < len(binding.segments):
            if i in starts:
                var = starts[i]
                captured = "/".join(segment_text(s) for s in binding.segments[var.start : var.end])
                parts.append(f"{{{var.field}={captured}}}")
                i = var.end
            else:
                parts.append(segment_text(binding.segments[i]))
                i += 1
        normalized = VARIABLE.sub(lambda m: f"{{{m[1]}={m[2] or '*'}}}", row.template)
        assert with_verb("/" + "/".join(parts), binding.verb) == normalized, row


def test_request_and_response_refs_name_the_method_types(
    generated: dict[str, tuple[ModuleType, ModuleType]], expected: list[Expected]
) -> None:
    bindings = all_bindings(generated)
    for row in expected:
        binding = find(bindings, row)
        assert (binding.request.proto_name, binding.response.proto_name) == (
            row.request,
            row.response,
        )


def method_row(service: str, m: MethodDescriptorProto, rules: list[Expected]) -> tuple[object, ...]:
    """What the monitor should say about method `m` of `service`, from its descriptor."""
    client, server = ("stream" if s else "unary" for s in (m.client_streaming, m.server_streaming))
    return (
        m.name,
        f"/{service}/{m.name}",
        f"{client}_{server}",
        m.input_type.lstrip("."),
        m.output_type.lstrip("."),
        tuple(
            f"{r.http_method} {r.template} {r.service}/{r.method}"
            for r in rules
            if (r.service, r.method) == (service, m.name)
        ),
    )


def test_monitor_lists_every_service_and_method(
    generated: dict[str, tuple[ModuleType, ModuleType]],
    descriptors: FileDescriptorSet,
    expected: list[Expected],
) -> None:
    for package, (_, monitor) in generated.items():
        files = [f for f in descriptors.file if f.name in EXAMPLE_FILES and f.package == package]
        assert package == monitor.PACKAGE
        assert sorted(monitor.FILES) == sorted(f.name for f in files)
        want = {
            (name := f"{package}.{service.name}"): (
                file.name,
                [method_row(name, m, expected) for m in service.method],
            )
            for file in files
            for service in file.service
        }
        got = {
            s.name: (
                s.file,
                [
                    (m.name, m.grpc_path, m.cardinality.value, *refs, m.bindings)
                    for m in s.methods
                    for refs in [(m.request.proto_name, m.response.proto_name)]
                ],
            )
            for s in monitor.SERVICES
        }
        assert got == want


def closure(by_name: dict[str, FileDescriptorProto], names: list[str]) -> set[str]:
    needed: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(by_name[name].dependency)
    return needed


def test_monitor_embeds_only_its_package_files_and_names_their_imports(
    generated: dict[str, tuple[ModuleType, ModuleType]], descriptors: FileDescriptorSet
) -> None:
    by_name = {f.name: f for f in descriptors.file}
    for package, (_, monitor) in generated.items():
        own = [f.name for f in descriptors.file if f.package == package]
        names = [name for name, _ in monitor.FILE_DESCRIPTORS]
        assert names == own  # in dependency order, as protoc lists them
        for name, data in monitor.FILE_DESCRIPTORS:
            file = FileDescriptorProto.FromString(base64.b64decode(data))
            file.ClearField("source_code_info")
            assert file == by_name[name], name
        imported = {d for name in own for d in by_name[name].dependency} - set(own)
        assert dict(monitor.IMPORTS) == {name: by_name[name].package for name in imported}


def test_every_needed_file_is_found_once_in_dependency_order(
    resolved: dict[str, list[ProtoFile]], descriptors: FileDescriptorSet
) -> None:
    by_name = {f.name: f for f in descriptors.file}
    for package, files in resolved.items():
        own = [f.name for f in descriptors.file if f.package == package]
        names = [f.name for f in files]
        assert sorted(names) == sorted(closure(by_name, own))
        for position, file in enumerate(files):
            assert set(file.proto.dependency) <= set(names[:position]), file.name
            # Files of other generated packages come from their modules; google/* from the
            # protobuf runtime's pool (without comments or json names, maybe another version).
            if file.name.startswith("google/"):
                assert file.source.startswith("the protobuf runtime"), file.name
                continue
            owner = by_name[file.name].package
            assert file.source == f"gen.{owner}._restmon_monitor", file.name
            proto = FileDescriptorProto()
            proto.CopyFrom(file.proto)
            proto.ClearField("source_code_info")
            assert proto == by_name[file.name], file.name


def test_message_refs_resolve_to_the_betterproto_classes(
    tmp_path_factory: pytest.TempPathFactory, messages: dict[str, DescriptorProto]
) -> None:
    pytest.importorskip("protoc_gen_restmon.plugin.dataclasses")
    root = tmp_path_factory.mktemp("dataclasses")
    response = run(capture_request(root, [PROTOS], EXAMPLE_FILES))
    assert response.error == ""
    with imported_output(response, root) as gen:
        monitor = importlib.import_module(f"{gen}.bookstore.v1._restmon_monitor")
        routes = importlib.import_module(f"{gen}.bookstore.v1._restmon_routes")
        refs: list[MessageRef] = [b.request for b in routes.BINDINGS]
        refs += [b.response for b in routes.BINDINGS]
        refs += [
            ref for s in monitor.SERVICES for m in s.methods for ref in (m.request, m.response)
        ]
        for ref in refs:
            cls = ref.resolve(f"{gen}.bookstore.v1")
            assert issubclass(cls, betterproto.Message), ref
            fields = {f.name for f in dataclasses.fields(cls)}
            assert fields == {f.name for f in messages[ref.proto_name].field}, ref


JSON_NAMES = """\
syntax = "proto3";
package a.v1;

import "google/api/annotations.proto";

message Inner {
  string display_name = 1 [json_name = "label"];
}

message Req {
  Inner the_inner = 1 [json_name = "inside"];
  Inner payload_item = 2 [json_name = "item"];
}

message Resp {
  Inner result_value = 1 [json_name = "result"];
}

service Things {
  rpc Put(Req) returns (Resp) {
    option (google.api.http) = {
      put: "/v1/{the_inner.display_name=things/*}"
      body: "payload_item"
      response_body: "result_value"
    };
  }
}
"""


def test_explicit_json_names_reach_variables_body_and_response_body(tmp_path: Path) -> None:
    response = generate_inline(tmp_path, {"a/v1/x.proto": JSON_NAMES}, "outputs=routes")
    assert response.error == ""
    with imported_output(response, tmp_path) as gen:
        [binding] = importlib.import_module(f"{gen}.a.v1._restmon_routes").BINDINGS
    assert [v.field for v in binding.variables] == [
        FieldPath(("the_inner", "display_name"), ("inside", "label"))
    ]
    assert binding.body == FieldPath(("payload_item",), ("item",))
    assert binding.response_body == FieldPath(("result_value",), ("result",))
