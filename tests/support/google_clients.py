"""Google's generated REST clients against the gateway, over real HTTP on loopback.

- `served(api, fakes, mode)`: the gateway serving a generated googleapis service and its
  Locations mixin on uvicorn, either `in-process` (`Gateway(services=fakes)`) or `proxy`
  (`Gateway(upstream=…)` in front of a grpclib server hosting the same fakes on loopback); with
  the default options except Google's error format (AIP-193), which those clients read.
- `client_options(url)`: what a `google-cloud-*` client needs to talk to it: the gateway as
  `api_endpoint` (an `http://` URL, which the REST transport keeps), anonymous credentials.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials

from protoc_gen_restmon.runtime import Gateway, GatewayOptions
from tests.support.google_apis import GeneratedApi
from tests.support.proxy_fixtures import running_upstream
from tests.support.servers import uvicorn_server

MODES = ("in-process", "proxy")

# The defaults, but errors in Google's format (AIP-193), which google-api-core reads.
OPTIONS = GatewayOptions(error_format="google")


class Services:
    """Several grpclib services as one (`__mapping__`), for one grpclib server."""

    def __init__(self, services: Sequence[Any]) -> None:
        self.services = services

    def __mapping__(self) -> dict[str, Any]:
        return {path: h for s in self.services for path, h in s.__mapping__().items()}


@contextlib.contextmanager
def served(
    api: GeneratedApi, fakes: Sequence[Any], mode: str, options: GatewayOptions = OPTIONS
) -> Iterator[str]:
    """The gateway's base URL, `http://127.0.0.1:PORT`, until the block ends."""
    if mode == "in-process":
        with uvicorn_server(Gateway(services=fakes, options=options)) as url:
            yield url
        return
    with running_upstream(Services(fakes), served_by=False) as upstream:
        gateway = Gateway(upstream=upstream.address, packages=api.packages, options=options)
        with uvicorn_server(gateway) as url:
            yield url


def client_options(url: str) -> dict[str, Any]:
    """Keyword arguments for a client class: `transport="rest"` against the gateway at `url`."""
    return {
        "transport": "rest",
        "credentials": AnonymousCredentials(),  # type: ignore[no-untyped-call]
        "client_options": ClientOptions(api_endpoint=url),
    }
