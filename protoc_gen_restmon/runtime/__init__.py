"""What generated code imports at run time, and the public runtime API.

`from protoc_gen_restmon.runtime import Gateway` (or `Monitor`) works, but loads it only on first
use: generated route and monitor modules import `runtime.specs`, and importing them must stay cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Gateway": "protoc_gen_restmon.runtime.gateway",
    "GatewayOptions": "protoc_gen_restmon.runtime.gateway",
    "JsonOptions": "protoc_gen_restmon.runtime.json_mapping",
    "Monitor": "protoc_gen_restmon.runtime.monitor.monitor",
    "TranscodeOptions": "protoc_gen_restmon.runtime.transcode",
    "RpcError": "protoc_gen_restmon.runtime.status",
    "Code": "protoc_gen_restmon.runtime.status",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
