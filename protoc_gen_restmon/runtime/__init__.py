"""The public runtime API, and what generated code imports at run time.

    from protoc_gen_restmon.runtime import AdminApp, Gateway, GatewayOptions, Monitor, with_admin

Every name in `__all__` is loaded on first use: generated route and monitor modules import
`runtime.specs` and `runtime.monitor.hooks`, and importing them must stay cheap. Type checkers see
the real classes (the imports under `TYPE_CHECKING`).

Where things live: `gateway/` (the ASGI app, backends, upstream channel), `transcode/` (HTTP
request → message), `router` (path matching), `jsoncodec/` (proto3 JSON), `status` (codes and
errors), `monitor/` (recording calls, keys, stores, metrics), `admin/` (the admin REST API),
`protofiles/` (descriptors printed back as `.proto`), `serving` (serving until SIGTERM/SIGINT, then
a clean stop).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protoc_gen_restmon.runtime.admin.app import AdminApp
    from protoc_gen_restmon.runtime.admin.auth import create_admin_token
    from protoc_gen_restmon.runtime.admin.mount import with_admin
    from protoc_gen_restmon.runtime.connections import ConnectionLimits
    from protoc_gen_restmon.runtime.errors import ConfigError
    from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions
    from protoc_gen_restmon.runtime.gateway.upstream import (
        RetryPolicy,
        UpstreamOptions,
        UpstreamTls,
    )
    from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
    from protoc_gen_restmon.runtime.monitor.monitor import Monitor
    from protoc_gen_restmon.runtime.serving import serve_until_stopped
    from protoc_gen_restmon.runtime.status import Code, RpcError
    from protoc_gen_restmon.runtime.transcode.request import TranscodeOptions
    from protoc_gen_restmon.serve_cli import add_limit_arguments, connection_limits

_EXPORTS = {
    "AdminApp": "protoc_gen_restmon.runtime.admin.app",
    "Code": "protoc_gen_restmon.runtime.status",
    "ConfigError": "protoc_gen_restmon.runtime.errors",
    "create_admin_token": "protoc_gen_restmon.runtime.admin.auth",
    "Gateway": "protoc_gen_restmon.runtime.gateway.app",
    "GatewayOptions": "protoc_gen_restmon.runtime.gateway.app",
    "JsonOptions": "protoc_gen_restmon.runtime.jsoncodec.options",
    "Monitor": "protoc_gen_restmon.runtime.monitor.monitor",
    "RetryPolicy": "protoc_gen_restmon.runtime.gateway.upstream",
    "RpcError": "protoc_gen_restmon.runtime.status",
    "serve_until_stopped": "protoc_gen_restmon.runtime.serving",
    "TranscodeOptions": "protoc_gen_restmon.runtime.transcode.request",
    "UpstreamOptions": "protoc_gen_restmon.runtime.gateway.upstream",
    "UpstreamTls": "protoc_gen_restmon.runtime.gateway.upstream",
    "with_admin": "protoc_gen_restmon.runtime.admin.mount",
    # The connection limits' command-line flags (docs/deployment.md), for servers of one's own.
    "ConnectionLimits": "protoc_gen_restmon.runtime.connections",
    "add_limit_arguments": "protoc_gen_restmon.serve_cli",
    "connection_limits": "protoc_gen_restmon.serve_cli",
}

__all__ = [
    "AdminApp",
    "Code",
    "ConfigError",
    "ConnectionLimits",
    "Gateway",
    "GatewayOptions",
    "JsonOptions",
    "Monitor",
    "RetryPolicy",
    "RpcError",
    "TranscodeOptions",
    "UpstreamOptions",
    "UpstreamTls",
    "add_limit_arguments",
    "connection_limits",
    "create_admin_token",
    "serve_until_stopped",
    "with_admin",
]

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        if name not in _EXPORTS:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # the next access is a plain attribute
        return value
