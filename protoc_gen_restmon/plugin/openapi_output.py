"""The openapi output: an OpenAPI 3.1 document (JSON) per package, or one for the whole run.

The document is `runtime.openapi.build_document`'s, the same builder a running Gateway uses, given
what the plugin knows: the request's descriptors (comments included) and the bindings exactly as
compiled for the route modules, so `fully_decode_reserved_expansion`, `http_config` rules and
`generate_unbound_methods` reach it through the bindings. What is chosen when a gateway is built
(`GatewayOptions.json`, `error_format`, the Monitor's `require_keys`) is not known here: the
document describes a gateway with the defaults (docs/openapi-output.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from google.protobuf.descriptor_pb2 import FileDescriptorProto

from protoc_gen_restmon.plugin.bindings import MethodSite
from protoc_gen_restmon.plugin.errors import GenerationError, Where
from protoc_gen_restmon.runtime.specs import LITERAL, Binding

OPENAPI_FILE = "openapi.json"
# `v1`, `v2beta3`, `v1p1beta1`, `v1alpha`: the API version a googleapis package name ends with.
_VERSION = re.compile(r"v\d+(?:[a-z]+\d*)*")


def openapi_files(
    proto_files: Sequence[FileDescriptorProto],
    packages: Mapping[str, Sequence[FileDescriptorProto]],
    bindings: Mapping[str, Sequence[Binding]],
    sites: Sequence[MethodSite],
    *,
    merge: bool,
) -> list[tuple[str, str]]:
    """`<package path>/openapi.json` for each package with a binding, or with `merge` one
    `openapi.json` for every binding of the run. `proto_files` is the request's (dependencies
    first); `bindings` holds each package's, in route-module order."""
    from protoc_gen_restmon.runtime.openapi.serialize import dump_json

    bound = {package: tuple(found) for package, found in bindings.items() if found}
    places = {(site.service_name, site.method.name): site.where for site in sites}
    if merge:
        check_path_clashes(bound, places)
        every = [b for found in bound.values() for b in found]
        if not every:
            return []
        own = [f for package in bound for f in packages[package]]
        document = _build(_closure(proto_files, own), every, _merged_title(bound), places)
        return [(OPENAPI_FILE, dump_json(document))]
    return [
        (
            document_path(package),
            dump_json(_build(_closure(proto_files, packages[package]), found, package, places)),
        )
        for package, found in bound.items()
    ]


def document_path(package: str) -> str:
    """`bookstore.v1` -> `bookstore/v1/openapi.json`, beside the package's route module."""
    return str(PurePosixPath(*package.split("."), OPENAPI_FILE)) if package else OPENAPI_FILE


def _closure(
    proto_files: Sequence[FileDescriptorProto], own: Sequence[FileDescriptorProto]
) -> list[FileDescriptorProto]:
    """`own` and every file they import, directly or not, in the request's (topological) order."""
    by_name = {f.name: f for f in proto_files}
    needed: set[str] = set()
    stack = [f.name for f in own]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(by_name[name].dependency)
    return [f for f in proto_files if f.name in needed]


def _build(
    files: Sequence[FileDescriptorProto],
    bindings: Sequence[Binding],
    title: str,
    places: Mapping[tuple[str, str], Where],
) -> dict[str, Any]:
    """The builder's document; a failure is a GenerationError at the method that causes it."""
    from protoc_gen_restmon.runtime.openapi import ApiInfo, build_document

    info = ApiInfo(title=title, version=api_version(title))
    try:
        return build_document(files, bindings, info=info)
    except Exception as err:  # whatever the builder raises on input it cannot describe
        raise _build_error(files, bindings, places, err) from err


def _build_error(
    files: Sequence[FileDescriptorProto],
    bindings: Sequence[Binding],
    places: Mapping[tuple[str, str], Where],
    err: Exception,
) -> GenerationError:
    """Each binding built alone names the methods at fault; else the document as a whole."""
    from protoc_gen_restmon.runtime.openapi import build_document

    problems: list[tuple[Where, str]] = []
    for binding in bindings:
        try:
            build_document(files, [binding])
        except Exception as alone:  # the same failure, now with its binding
            where = places.get((binding.service, binding.method), Where(binding.service))
            problems.append((where, f"{binding.http_method} {binding.template}: {_cause(alone)}"))
    if not problems:
        problems.append((Where(files[-1].name if files else "(openapi)"), _cause(err)))
    return GenerationError(problems)


def _cause(err: Exception) -> str:
    return f"cannot describe it in OpenAPI: {type(err).__name__}: {err}"


def check_path_clashes(
    bindings: Mapping[str, Sequence[Binding]], places: Mapping[tuple[str, str], Where]
) -> None:
    """In one document an HTTP method and path (parameter names aside: OpenAPI 3.1 §4.8.8.2
    calls `/a/{x}` and `/a/{y}` identical) belong to one operation: bindings of two packages
    that share them cannot be merged. Every such pair is a problem, naming both."""
    first: dict[tuple[str, str], tuple[str, Binding]] = {}
    problems: list[tuple[Where, str]] = []
    for package, found in bindings.items():
        for binding in found:
            key = openapi_route(binding)
            seen = first.setdefault(key, (package, binding))
            if seen[0] != package:
                other = seen[1]
                where = places.get((other.service, other.method), Where(other.service))
                problems.append(
                    (
                        places.get((binding.service, binding.method), Where(binding.service)),
                        f"{binding.http_method} {binding.template} (package {package}) and "
                        f"{other.http_method} {other.template} of {other.service}.{other.method} "
                        f"({where.file}:{where.line or '?'}, package {seen[0]}) are the same "
                        f"operation {key[0]} {key[1]} in one OpenAPI document: generate without "
                        "openapi_merge, or change one of the templates",
                    )
                )
    if problems:
        raise GenerationError(problems)


def openapi_route(binding: Binding) -> tuple[str, str]:
    """The method and the path as OpenAPI sees it, each parameter written `{}`: a literal is a
    segment of its own, inside a variable or not, and `*` or `**` one parameter."""
    parts = (s.value if s.kind is LITERAL else "{}" for s in binding.segments)
    verb = f":{binding.verb}" if binding.verb else ""
    return binding.http_method, "/" + "/".join(parts) + verb


def api_version(package: str) -> str:
    """The version a package name ends with (`bookstore.v1` -> `v1`), else ApiInfo's default."""
    from protoc_gen_restmon.runtime.openapi import ApiInfo

    last = package.rsplit(".", 1)[-1]
    return last if _VERSION.fullmatch(last) else ApiInfo().version


def _merged_title(bindings: Mapping[str, Sequence[Binding]]) -> str:
    """The packages' longest common dotted prefix (`google.cloud`), else `API`."""
    common = os.path.commonpath([package.replace(".", "/") for package in bindings])
    return common.replace("/", ".") or "API"
