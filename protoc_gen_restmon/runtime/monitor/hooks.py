"""Per-method hooks: the base of the service monitors that generated monitoring modules define.

Each generated `_restmon_monitor.py` holds one class per service, e.g.

    class BookstoreServiceMonitor(ServiceMonitor):
        SERVICE = SERVICES[0]
        METHODS = {"GetBook": "get_book", ...}

        def get_book(self, call: _hooks.CallContext) -> None:
            "/bookstore.v1.BookstoreService/GetBook"  # (a docstring, in the real module)

Subclass it, override the methods you care about and pass instances as `Monitor(hooks=[...])`.
A hook runs once per call, after the API key check and before the handler: it may add labels
(`call.labels["tenant"] = "acme"`, stored with the call record) or refuse the call by raising
`RpcError` (the refusal is recorded too). Importing this module stays cheap: generated modules
import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from protoc_gen_restmon.runtime.errors import ConfigError

if TYPE_CHECKING:  # only names for annotations: generated modules import this one
    from protoc_gen_restmon.runtime.gateway.observe import CallInfo
    from protoc_gen_restmon.runtime.monitor.model import ApiKey
    from protoc_gen_restmon.runtime.specs import ServiceSpec


@dataclass(slots=True)
class CallContext:
    """What a hook sees of a call, and the labels it may add."""

    info: CallInfo  # service, method, transport, request id, peer, metadata, …
    client_ip: str  # after trusted-proxy resolution
    api_key: ApiKey | None  # the accepted key, None when the method needs none
    labels: dict[str, str] = field(default_factory=dict)


Hook = Callable[["CallContext"], None]


class ServiceMonitor:
    """Base of the generated per-service monitors; every hook method does nothing by default."""

    SERVICE: ClassVar[ServiceSpec]
    METHODS: ClassVar[dict[str, str]]  # RPC name -> hook method name: "GetBook" -> "get_book"

    def restmon_hooks(self) -> dict[str, Hook]:
        """The overridden hooks by gRPC path (`/pkg.Service/Method`); defaults are left out,
        so that methods without a hook cost nothing per call."""
        found: dict[str, Hook] = {}
        generated = _generated_class(type(self))
        for rpc, name in self.METHODS.items():
            if getattr(type(self), name) is not getattr(generated, name):
                found[f"/{self.SERVICE.name}/{rpc}"] = getattr(self, name)
        return found


def _generated_class(cls: type[ServiceMonitor]) -> type:
    """The generated class in `cls`'s bases: the one whose direct base is ServiceMonitor."""
    for klass in cls.__mro__:
        if ServiceMonitor in klass.__bases__:
            return klass
    raise ConfigError(f"{cls.__name__} is not a generated service monitor")
