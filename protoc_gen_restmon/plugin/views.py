"""Views: everything a template prints, computed beforehand as strings, tuples and bools."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from betterproto.compile.naming import pythonize_class_name, pythonize_method_name
from google.protobuf.descriptor_pb2 import FileDescriptorProto

from protoc_gen_restmon.plugin.pysource import chunked_string, to_source
from protoc_gen_restmon.runtime.specs import Binding, ServiceSpec


@dataclass(frozen=True, slots=True)
class RoutesView:
    package_name: str  # "bookstore.v1"
    package: str  # the same as a Python string literal
    sources: str  # "a.proto, b.proto"
    imports: tuple[str, ...]
    bindings: str  # Python source of the BINDINGS tuple


@dataclass(frozen=True, slots=True)
class DescriptorView:
    name: str  # a Python string literal
    data: str  # base64 of the serialized FileDescriptorProto, as chunked string literals


@dataclass(frozen=True, slots=True)
class HookView:
    rpc: str  # the RPC's name as a Python string literal: "GetBook"
    py_name: str  # the hook method: get_book (betterproto's name for the service method)
    grpc_path: str  # /bookstore.v1.BookstoreService/GetBook


@dataclass(frozen=True, slots=True)
class ServiceMonitorView:
    """The per-service hook class: `class BookstoreServiceMonitor(ServiceMonitor)`."""

    class_name: str
    service_name: str  # bookstore.v1.BookstoreService
    index: int  # its position in SERVICES
    hooks: tuple[HookView, ...]


@dataclass(frozen=True, slots=True)
class MonitorView:
    package_name: str
    package: str
    sources: str
    imports: tuple[str, ...]
    files: str  # Python source of the FILES tuple
    services: str  # Python source of the SERVICES tuple
    imports_by_name: str  # Python source of the IMPORTS tuple
    descriptors: tuple[DescriptorView, ...]
    has_services: bool  # the hooks module is imported only when there are hook classes
    service_monitors: tuple[ServiceMonitorView, ...]


def routes_view(
    package: str, files: Sequence[FileDescriptorProto], bindings: tuple[Binding, ...]
) -> RoutesView:
    return RoutesView(
        package_name=package,
        package=to_source(package),
        sources=", ".join(sorted(f.name for f in files)),
        imports=_imports(bindings, always=("Binding",)),
        bindings=to_source(bindings, prefix="BINDINGS: tuple[Binding, ...] = "),
    )


def monitor_view(
    package: str,
    files: Sequence[FileDescriptorProto],
    services: tuple[ServiceSpec, ...],
    embedded: Iterable[FileDescriptorProto],
    imported: Sequence[tuple[str, str]],
) -> MonitorView:
    return MonitorView(
        package_name=package,
        package=to_source(package),
        sources=", ".join(sorted(f.name for f in files)),
        imports=_imports(services, always=("ServiceSpec",)),
        files=to_source(tuple(f.name for f in files), prefix="FILES: tuple[str, ...] = "),
        services=to_source(services, prefix="SERVICES: tuple[ServiceSpec, ...] = "),
        imports_by_name=to_source(
            tuple(imported), prefix="IMPORTS: tuple[tuple[str, str], ...] = "
        ),
        descriptors=tuple(_descriptor_view(f) for f in embedded),
        has_services=bool(services),
        service_monitors=tuple(_service_monitor_view(i, s) for i, s in enumerate(services)),
    )


def _service_monitor_view(index: int, service: ServiceSpec) -> ServiceMonitorView:
    return ServiceMonitorView(
        class_name=pythonize_class_name(service.name.rpartition(".")[2]) + "Monitor",
        service_name=service.name,
        index=index,
        hooks=tuple(
            HookView(
                rpc=to_source(method.name),
                py_name=pythonize_method_name(method.name),
                grpc_path=method.grpc_path,
            )
            for method in service.methods
        ),
    )


def _descriptor_view(file: FileDescriptorProto) -> DescriptorView:
    data = base64.b64encode(file.SerializeToString(deterministic=True)).decode("ascii")
    return DescriptorView(name=to_source(file.name), data=chunked_string(data, indent=2))


def _imports(value: Any, always: tuple[str, ...]) -> tuple[str, ...]:
    """The `runtime.specs` names that the source of `value` mentions."""
    return tuple(sorted(set(always) | set(_type_names(value))))


def _type_names(value: Any) -> Iterator[str]:
    if isinstance(value, tuple):
        for item in value:
            yield from _type_names(item)
    elif isinstance(value, Enum):
        yield type(value).__name__
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield type(value).__name__
        for field in dataclasses.fields(value):
            yield from _type_names(getattr(value, field.name))
