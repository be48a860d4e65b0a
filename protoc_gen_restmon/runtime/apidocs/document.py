"""The OpenAPI document a gateway serves: built once from what it holds, written per root_path.

The inputs are the gateway's own: the FileDescriptorProtos embedded in the generated monitor
modules of its services (with their comments) and every file they import
(`descriptor_files.needed_files`), the bindings its router serves, its JSON options, its error
format and the services whose methods need an API key. `runtime.openapi.build_document` turns
them into the document; it is built on first use (not when the gateway is built: a gateway of
a large API would pay for it at every start, served or not) and kept.

The one part that depends on the request is `servers`: the mount point (`root_path`, ASGI's
`Mount("/api", …)` or `uvicorn --root-path`) under which the API is reached. The document's
bytes are kept per root_path.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from google.protobuf import descriptor_pb2

from protoc_gen_restmon.runtime.descriptor_files import needed_files
from protoc_gen_restmon.runtime.jsoncodec.options import DEFAULT_OPTIONS, JsonOptions
from protoc_gen_restmon.runtime.specs import Binding

if TYPE_CHECKING:
    from protoc_gen_restmon.runtime.openapi import ApiInfo

__all__ = ["ApiDocument", "gateway_files"]

# Distinct root paths whose bytes are kept (a gateway is reached under one or two).
MAX_ROOTS = 16


def gateway_files(modules: Iterable[ModuleType]) -> list[descriptor_pb2.FileDescriptorProto]:
    """Every file the monitor modules embed or import, each once, dependencies first.

    Each module's list is already in dependency order; a file another module brought earlier
    stays where it was, which is before every file importing it."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for module in modules:
        for file in needed_files(module):
            files.setdefault(file.name, file.proto)
    return list(files.values())


@dataclass
class ApiDocument:
    """The document of one gateway: `document()` builds it once; `json_bytes(root_path)` is
    what `GET /openapi.json` answers below that mount point."""

    modules: Sequence[ModuleType]  # the generated monitor modules, in service order
    bindings: Sequence[Binding]
    json_options: JsonOptions = DEFAULT_OPTIONS
    error_format: str = "status"
    api_key_services: frozenset[str] = frozenset()
    info: ApiInfo | None = None
    _document: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _bytes: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def built(self) -> bool:
        return self._document is not None

    def document(self) -> dict[str, Any]:
        """The document as `build_document` returns it (built on the first call)."""
        with self._lock:  # the CLI and the tests call it from other threads too
            if self._document is None:
                self._document = self._build()
            return self._document

    def _build(self) -> dict[str, Any]:
        from protoc_gen_restmon.runtime.openapi import ApiInfo, build_document

        return build_document(
            gateway_files(self.modules),
            self.bindings,
            info=self.info if self.info is not None else ApiInfo(),
            json_options=self.json_options,
            error_format=self.error_format,
            api_key_services=self.api_key_services,
        )

    def served(self, root_path: str = "") -> dict[str, Any]:
        """The document as served below `root_path`: its `servers` name the mount point."""
        return with_server(self.document(), root_path)

    def json_bytes(self, root_path: str = "") -> bytes:
        """`served(root_path)` as JSON bytes (computed once per root_path)."""
        body = self._bytes.get(root_path)
        if body is None:
            body = encode_json(self.served(root_path))
            if len(self._bytes) < MAX_ROOTS:
                self._bytes[root_path] = body
        return body


def with_server(document: dict[str, Any], root_path: str) -> dict[str, Any]:
    """`document` with `servers: [{"url": root_path}]` (a relative URL: the API lives on the
    host that served the document, below the mount point), right after `info`."""
    server = {"url": root_path.rstrip("/") or "/"}
    served: dict[str, Any] = {}
    for key, value in document.items():
        if key != "servers":
            served[key] = value
        if key == "info":
            served["servers"] = [server]
    served.setdefault("servers", [server])
    return served


def encode_json(document: dict[str, Any]) -> bytes:
    """Compact JSON, keys in the document's own order (which the builder fixes)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
