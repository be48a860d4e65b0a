"""The admin REST API: monitoring data, API keys (read-only) and proto files, behind admin auth.

`AdminApp(monitor, packages=[…], proto_dir=…)` is the ASGI app; `with_admin(gateway, admin)`
serves it beside a gateway on one port. Credentials come from `restmon admin …`
(`create_admin_token` here for programs).
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use: the `restmon keys`/`restmon admin` commands need only a little of this.
_EXPORTS = {
    "AdminApp": "app",
    "MonitorLike": "app",
    "AdminAuth": "auth",
    "create_admin_token": "auth",
    "ADMIN_PREFIXES": "mount",
    "with_admin": "mount",
    "ProtoFile": "protofiles",
    "ProtoFiles": "protofiles",
    "app_label": "protofiles",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


__all__ = [
    "ADMIN_PREFIXES",
    "AdminApp",
    "AdminAuth",
    "MonitorLike",
    "ProtoFile",
    "ProtoFiles",
    "app_label",
    "create_admin_token",
    "with_admin",
]
