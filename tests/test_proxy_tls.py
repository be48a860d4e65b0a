"""TLS to the upstream: `Gateway(upstream=…)` with `UpstreamOptions(tls=…)` against a real grpclib
server with TLS, its certificate signed by a private CA made here with the openssl CLI."""

from __future__ import annotations

import ssl
from pathlib import Path
from types import ModuleType

import pytest

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions, UpstreamOptions
from protoc_gen_restmon.runtime.gateway.upstream import UpstreamTls
from tests.support.pki import Pki
from tests.support.proxy_fixtures import proxy_call
from tests.support.upstream_process import UpstreamProcess


def proxy(pb: ModuleType, tls_upstream: UpstreamProcess, tls: bool | UpstreamTls | None) -> Gateway:
    return Gateway(upstream=tls_upstream.address, packages=[pb], options=tls_options(tls))


def tls_options(tls: bool | UpstreamTls | None) -> GatewayOptions:
    return GatewayOptions(upstream=UpstreamOptions(tls=tls))


def test_tls_with_a_private_ca_proxies(
    bookstore_pb: ModuleType, tls_upstream: UpstreamProcess, pki: Pki
) -> None:
    reply = proxy_call(
        proxy(bookstore_pb, tls_upstream, UpstreamTls(ca=pki.ca)), "GET", "/v1/shelves/fiction"
    )
    assert reply.status == 200, reply.body
    assert reply.json()["name"] == "shelves/fiction"


def test_tls_streams(bookstore_pb: ModuleType, tls_upstream: UpstreamProcess, pki: Pki) -> None:
    gateway = proxy(bookstore_pb, tls_upstream, UpstreamTls(ca=pki.ca))
    reply = proxy_call(gateway, "GET", "/v1/shelves/many:watch?maxEvents=3")
    assert [line["result"]["bookAdded"]["name"] for line in reply.lines()] == ["b0", "b1", "b2"]


def test_tls_verifies_the_server_name_given(
    bookstore_pb: ModuleType, tls_upstream: UpstreamProcess, pki: Pki
) -> None:
    """The certificate names 127.0.0.1 and localhost: another name fails, theirs passes."""
    wrong = UpstreamTls(ca=pki.ca, server_name="grpc.internal")
    reply = proxy_call(proxy(bookstore_pb, tls_upstream, wrong), "GET", "/v1/shelves/fiction")
    assert (reply.status, reply.json()["code"]) == (503, 14)
    right = UpstreamTls(ca=pki.ca, server_name="localhost")
    reply = proxy_call(proxy(bookstore_pb, tls_upstream, right), "GET", "/v1/shelves/fiction")
    assert reply.status == 200, reply.body


def test_tls_with_system_cas_refuses_the_private_certificate(
    bookstore_pb: ModuleType, tls_upstream: UpstreamProcess
) -> None:
    reply = proxy_call(proxy(bookstore_pb, tls_upstream, True), "GET", "/v1/shelves/fiction")
    assert (reply.status, reply.json()["code"]) == (503, 14)
    assert "CERTIFICATE_VERIFY_FAILED" in reply.json()["message"]


def test_plain_http2_to_a_tls_upstream_fails_fast(
    bookstore_pb: ModuleType, tls_upstream: UpstreamProcess
) -> None:
    reply = proxy_call(proxy(bookstore_pb, tls_upstream, None), "GET", "/v1/shelves/fiction")
    assert (reply.status, reply.json()["code"]) == (503, 14)


def test_mutual_tls_with_a_client_certificate_proxies(
    bookstore_pb: ModuleType, mutual_upstream: UpstreamProcess, pki: Pki
) -> None:
    tls = UpstreamTls(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    reply = proxy_call(proxy(bookstore_pb, mutual_upstream, tls), "GET", "/v1/shelves/fiction")
    assert reply.status == 200, reply.body


def test_mutual_tls_without_a_client_certificate_is_503(
    bookstore_pb: ModuleType, mutual_upstream: UpstreamProcess, pki: Pki
) -> None:
    tls = UpstreamTls(ca=pki.ca)
    reply = proxy_call(proxy(bookstore_pb, mutual_upstream, tls), "GET", "/v1/shelves/fiction")
    assert (reply.status, reply.json()["code"]) == (503, 14)


def test_an_ssl_context_is_a_config_error_naming_upstream_tls() -> None:
    with pytest.raises(ConfigError, match="UpstreamTls"):
        UpstreamOptions(tls=ssl.create_default_context(), transport="grpcio")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "tls",
    [
        pytest.param(UpstreamTls(ca="/nonexistent/ca.pem"), id="missing-ca"),
        pytest.param(UpstreamTls(cert=Path("c.pem")), id="cert-without-key"),
    ],
)
def test_unusable_tls_files_are_config_errors_at_build_time(
    bookstore_pb: ModuleType, tls: UpstreamTls
) -> None:
    with pytest.raises(ConfigError, match="TLS"):
        Gateway(upstream="127.0.0.1:1", packages=[bookstore_pb], options=tls_options(tls))
