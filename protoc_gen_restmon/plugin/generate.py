"""The plugin's one pass: request → (file name, content) pairs for every output asked for."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import PurePosixPath

from google.protobuf.compiler.plugin_pb2 import CodeGeneratorRequest
from google.protobuf.descriptor_pb2 import FileDescriptorProto

from protoc_gen_restmon.plugin.bindings import MethodSite, Problems, collect_bindings, method_sites
from protoc_gen_restmon.plugin.descriptors import DescriptorIndex
from protoc_gen_restmon.plugin.errors import GenerationError, Where
from protoc_gen_restmon.plugin.http_config import HttpConfig, load_http_config
from protoc_gen_restmon.plugin.openapi_output import openapi_files
from protoc_gen_restmon.plugin.options import Options, parse_options
from protoc_gen_restmon.plugin.render import render_monitor, render_routes
from protoc_gen_restmon.plugin.views import (
    monitor_view,
    routes_view,
)
from protoc_gen_restmon.runtime.specs import (
    MONITOR_MODULE,
    ROUTES_MODULE,
    Binding,
    MethodSpec,
    ServiceSpec,
)


def generate(request: CodeGeneratorRequest, raw_request: bytes) -> list[tuple[str, str]]:
    """Every output file, or a GenerationError that lists every problem in the input."""
    options = parse_options(request.parameter)
    config = load_http_config(options.http_config) if options.http_config else HttpConfig()
    index = DescriptorIndex.build(request.proto_file)
    packages = packages_to_generate(request)
    problems = Problems()
    _check_module_names(request, packages, problems)
    sites = [site for files in packages.values() for f in files for site in method_sites(index, f)]
    bindings = collect_bindings(
        index,
        sites,
        config,
        unbound_methods=options.generate_unbound_methods,
        pydantic=options.pydantic,
        problems=problems,
        warn_duplicates=options.duplicate_routes == "warn",
        fully_decode_reserved_expansion=_fully_decode(options, config),
    )
    for message in problems.messages:
        print(message, file=sys.stderr)
    problems.raise_if_any()
    by_package = _bindings_by_package(sites, bindings, packages)
    out: list[tuple[str, str]] = []
    if "openapi" in options.outputs:  # before the dataclasses: its errors come without waiting
        out.extend(
            openapi_files(
                request.proto_file, packages, by_package, sites, merge=options.openapi_merge
            )
        )
    if "dataclasses" in options.outputs:
        # Imported here: betterproto's compiler is costly to import and not always needed.
        from protoc_gen_restmon.plugin.dataclasses import (
            DataclassGenerationError,
            generate_dataclasses,
        )

        try:
            out.extend(
                generate_dataclasses(
                    raw_request, options.betterproto_parameter, black=options.black
                )
            )
        except DataclassGenerationError as err:
            raise GenerationError.one(Where(err.package or "(betterproto)"), str(err)) from err
    for package, files in packages.items():
        out.extend(
            _package_modules(
                request, index, options, packages, package, files, sites, bindings, by_package
            )
        )
    return out


def _bindings_by_package(
    sites: list[MethodSite],
    bindings: dict[str, tuple[Binding, ...]],
    packages: dict[str, list[FileDescriptorProto]],
) -> dict[str, tuple[Binding, ...]]:
    """Each package's bindings, service by service in declaration order (its route module's)."""
    services: dict[str, dict[str, None]] = {package: {} for package in packages}
    for site in sites:
        services[site.file.package][site.service_name] = None
    return {
        package: tuple(b for name in names for b in bindings[name])
        for package, names in services.items()
    }


def _fully_decode(options: Options, config: HttpConfig) -> bool:
    """The plugin option when given, else the YAML's `http.fully_decode_reserved_expansion`."""
    if options.fully_decode_reserved_expansion is not None:
        return options.fully_decode_reserved_expansion
    return config.fully_decode_reserved_expansion


def packages_to_generate(request: CodeGeneratorRequest) -> dict[str, list[FileDescriptorProto]]:
    """Packages with a file to generate, each with all its files in the request (request order).

    betterproto writes a package's module from every file of that package in the request, so the
    route and monitor modules cover the same files.
    """
    wanted = {f.package for f in request.proto_file if f.name in set(request.file_to_generate)}
    packages: dict[str, list[FileDescriptorProto]] = {}
    for file in request.proto_file:
        if file.package in wanted:
            packages.setdefault(file.package, []).append(file)
    return dict(sorted(packages.items()))


def module_path(package: str, module: str) -> str:
    return str(PurePosixPath(*package.split("."), f"{module}.py")) if package else f"{module}.py"


def _package_modules(
    request: CodeGeneratorRequest,
    index: DescriptorIndex,
    options: Options,
    packages: dict[str, list[FileDescriptorProto]],
    package: str,
    files: list[FileDescriptorProto],
    sites: list[MethodSite],
    bindings: dict[str, tuple[Binding, ...]],
    by_package: dict[str, tuple[Binding, ...]],
) -> Iterator[tuple[str, str]]:
    own = [site for site in sites if site.file.package == package]
    if "routes" in options.outputs:
        view = routes_view(package, files, by_package[package])
        yield module_path(package, ROUTES_MODULE), render_routes(view)
    if "monitor" in options.outputs:
        services = _services(index, own, bindings, options.pydantic)
        embedded, imports = _embedded_and_imported(request, set(packages), files)
        yield (
            module_path(package, MONITOR_MODULE),
            render_monitor(monitor_view(package, files, services, embedded, imports)),
        )


def _service_names(sites: list[MethodSite]) -> list[str]:
    return list(dict.fromkeys(site.service_name for site in sites))


def _services(
    index: DescriptorIndex,
    sites: list[MethodSite],
    bindings: dict[str, tuple[Binding, ...]],
    pydantic: bool,
) -> tuple[ServiceSpec, ...]:
    specs = []
    for name in _service_names(sites):
        methods = tuple(
            _method_spec(index, site, bindings[name], pydantic)
            for site in sites
            if site.service_name == name
        )
        file = next(site.file.name for site in sites if site.service_name == name)
        specs.append(ServiceSpec(name=name, file=file, methods=methods))
    return tuple(specs)


def _method_spec(
    index: DescriptorIndex, site: MethodSite, bindings: tuple[Binding, ...], pydantic: bool
) -> MethodSpec:
    package = site.file.package
    return MethodSpec(
        name=site.method.name,
        grpc_path=f"/{site.service_name}/{site.method.name}",
        cardinality=site.cardinality,
        request=index.message_ref(site.method.input_type, package, pydantic=pydantic),
        response=index.message_ref(site.method.output_type, package, pydantic=pydantic),
        bindings=tuple(str(b) for b in bindings if b.method == site.method.name),
    )


# Files the Python runtimes ship descriptors of: protobuf (the well-known types) and
# googleapis-common-protos. A monitor module names them; runtime.descriptor_files finds them.
RUNTIME_FILE_PREFIXES = (
    "google/protobuf/",
    "google/api/",
    "google/rpc/",
    "google/type/",
    "google/longrunning/",
)


def _embedded_and_imported(
    request: CodeGeneratorRequest, generated: set[str], files: list[FileDescriptorProto]
) -> tuple[list[FileDescriptorProto], list[tuple[str, str]]]:
    """What a package's monitor module embeds, and the files it names instead (with their
    proto package), both in the request's (topological) order.

    Embedded: the package's files, and the files they import, directly or not, that no package
    of this run owns and that no Python runtime ships (their package may never be generated:
    embedding them keeps the module whole). Named: every other file an embedded file imports,
    found at run time in the monitor module of its package (written by this run or another)
    or in the protobuf runtime, so that each file is embedded once.
    """
    by_name = {f.name: f for f in request.proto_file}
    embedded: set[str] = set()
    named: set[str] = set()
    stack = [f.name for f in files]
    while stack:
        name = stack.pop()
        if name in embedded:
            continue
        embedded.add(name)
        for dependency in by_name[name].dependency:
            if _found_by_name(by_name[dependency], generated):
                named.add(dependency)
            else:
                stack.append(dependency)
    ordered = [f for f in request.proto_file if f.name in embedded]
    imports = [(f.name, f.package) for f in request.proto_file if f.name in named - embedded]
    return ordered, imports


def _found_by_name(file: FileDescriptorProto, generated: set[str]) -> bool:
    return file.package in generated or file.name.startswith(RUNTIME_FILE_PREFIXES)


def _check_module_names(
    request: CodeGeneratorRequest,
    packages: dict[str, list[FileDescriptorProto]],
    problems: Problems,
) -> None:
    """Our modules sit beside betterproto's; a proto package of the same name would clash."""
    ours = {
        ".".join(filter(None, (package, module)))
        for package in packages
        for module in (ROUTES_MODULE, MONITOR_MODULE)
    }
    for file in request.proto_file:
        for clash in ours:
            if file.package == clash or file.package.startswith(clash + "."):
                problems.add(
                    Where(file.name, None, file.package),
                    f"package {file.package!r} would be written where protoc-gen-restmon "
                    f"writes its module {clash!r}; rename the package",
                )
