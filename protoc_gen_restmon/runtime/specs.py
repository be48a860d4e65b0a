"""The data types that generated route and monitor modules are made of.

Generated code holds only data built from these types: compiled path templates, resolved field
paths and references to message classes. Nothing here parses or imports at module import time.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum
from typing import Any

# The modules protoc-gen-restmon writes into each generated package (beside betterproto's).
ROUTES_MODULE = "_restmon_routes"
MONITOR_MODULE = "_restmon_monitor"


class SegmentKind(Enum):
    """What one segment of a compiled path template matches."""

    LITERAL = "literal"  # exactly `Segment.value` (still percent-encoded as written)
    WILDCARD = "*"  # one non-empty path segment
    DEEP_WILDCARD = "**"  # zero or more path segments


@dataclass(frozen=True, slots=True)
class Segment:
    kind: SegmentKind
    value: str = ""


LITERAL = SegmentKind.LITERAL
WILDCARD = SegmentKind.WILDCARD
DEEP_WILDCARD = SegmentKind.DEEP_WILDCARD


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A dotted field path, by proto names and by JSON names: `author.display_name`."""

    proto: tuple[str, ...]
    json: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.proto)


@dataclass(frozen=True, slots=True)
class PathVariable:
    """A template variable: it captures the URL segments matched by `segments[start:end]`."""

    field: FieldPath
    start: int
    end: int
    # RFC 6570 reserved expansion (`{+x}`): the variable's own template is not exactly `*`
    # (`{x=a/*}`, `{x=**}`), so escapes of reserved characters stay as sent when decoding.
    reserved_expansion: bool


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message type: its full proto name and where its betterproto class lives.

    `module` is relative to the generated package holding the reference (`.`, `..other.v1`) or
    absolute (`betterproto.lib.google.protobuf`); it is imported only when `resolve` is called.
    """

    proto_name: str
    module: str
    name: str

    def resolve(self, package: str) -> Any:
        return getattr(importlib.import_module(self.module, package), self.name)


class Cardinality(Enum):
    UNARY_UNARY = "unary_unary"
    UNARY_STREAM = "unary_stream"
    STREAM_UNARY = "stream_unary"
    STREAM_STREAM = "stream_stream"


@dataclass(frozen=True, slots=True)
class Binding:
    """One HTTP binding of one RPC method (the rule itself or one of its additional_bindings)."""

    service: str  # full proto name: "bookstore.v1.Bookstore"
    method: str  # "GetBook"
    http_method: str  # "GET", "POST", …, or a custom kind; "*" matches any method
    template: str  # as written in the proto: "/v1/{name=shelves/*/books/*}"
    segments: tuple[Segment, ...]
    variables: tuple[PathVariable, ...]
    verb: str  # custom verb without the colon, "" when none
    body: FieldPath | None  # None: no body; FieldPath(("*",), ("*",)): every unbound field
    response_body: FieldPath | None
    request: MessageRef
    response: MessageRef
    cardinality: Cardinality
    fully_decode_reserved_expansion: bool = False

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.method}"

    def __str__(self) -> str:
        return f"{self.http_method} {self.template} {self.service}/{self.method}"


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str  # "GetBook"
    grpc_path: str  # "/bookstore.v1.Bookstore/GetBook"
    cardinality: Cardinality
    request: MessageRef
    response: MessageRef
    bindings: tuple[str, ...]  # `str(Binding)` of each of its bindings


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str  # "bookstore.v1.Bookstore"
    file: str  # the .proto file that declares it
    methods: tuple[MethodSpec, ...]
