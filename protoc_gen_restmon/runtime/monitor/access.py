"""Who may call what, and who is calling: the API-key policy and the trusted-proxy rule.

Both are worked out from the Monitor's configuration once; `KeyPolicy.requires` runs once per
method (the Monitor caches its answer), `TrustedProxies.client_ip` once per call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway.observe import CallInfo

# Always callable without a key: load balancers and tooling must reach them.
PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


class KeyPolicy:
    """Which methods need an API key: none, all, or the listed services and methods."""

    def __init__(self, require: bool | Iterable[str]) -> None:
        self._all = require is True
        self._services: set[str] = set()
        self._methods: set[str] = set()
        if not isinstance(require, bool):
            for entry in require:
                self._add(entry)

    def _add(self, entry: str) -> None:
        if entry.startswith("/"):
            service, _, method = entry[1:].partition("/")
            if not service or not method or "/" in method:
                raise ConfigError(f"require_keys: {entry!r} is not /package.Service/Method")
            self._methods.add(entry)
        elif entry and "/" not in entry:
            self._services.add(entry)
        else:
            raise ConfigError(f"require_keys: {entry!r} is not package.Service")

    def requires(self, service: str, path: str) -> bool:
        return service not in PUBLIC_SERVICES and (
            self._all or service in self._services or path in self._methods
        )


class TrustedProxies:
    """Finds the client behind trusted proxies: the right-most untrusted X-Forwarded-For hop."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(e, strict=False) for e in entries)

    def __bool__(self) -> bool:
        """Whether any proxy is trusted: without one, the client is the peer (no work)."""
        return bool(self._networks)

    def client_ip(self, info: CallInfo) -> str:
        peer = info.client_ip
        if not self._networks or not self._trusted(peer):
            return peer
        hops = [
            hop.strip()
            for name, value in info.metadata
            if name == "x-forwarded-for"
            for hop in value.split(",")
        ]
        client = peer
        for hop in reversed(hops):
            if not _is_ip(hop):
                break  # a forged or garbled hop: keep the last address a trusted proxy gave
            client = hop
            if not self._trusted(hop):
                break
        return client

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
