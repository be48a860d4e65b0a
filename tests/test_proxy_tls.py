"""TLS to the upstream: `Gateway(upstream=…)` with `UpstreamOptions(tls=…)` against a real grpclib
server with TLS, its certificate signed by a private CA made here with the openssl CLI."""

from __future__ import annotations

import ssl
from types import ModuleType

from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions, UpstreamOptions
from tests.support.pki import Pki
from tests.support.proxy_fixtures import proxy_call
from tests.support.upstream_process import UpstreamProcess


def proxy(
    pb: ModuleType, tls_upstream: UpstreamProcess, tls: bool | ssl.SSLContext | None
) -> Gateway:
    return Gateway(upstream=tls_upstream.address, packages=[pb], options=tls_options(tls))


def tls_options(tls: bool | ssl.SSLContext | None) -> GatewayOptions:
    return GatewayOptions(upstream=UpstreamOptions(tls=tls))


def private_ca(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.set_alpn_protocols(["h2"])
    return context


def test_tls_with_a_private_ca_proxies(
    bookstore_pb: ModuleType, tls_upstream: UpstreamProcess, pki: Pki
) -> None:
    gateway = Gateway(
        upstream=tls_upstream.address, packages=[bookstore_pb], options=tls_options(private_ca(pki))
    )
    reply = proxy_call(gateway, "GET", "/v1/shelves/fiction")
    assert reply.status == 200, reply.body
    assert reply.json()["name"] == "shelves/fiction"


def test_tls_streams(bookstore_pb: ModuleType, tls_upstream: UpstreamProcess, pki: Pki) -> None:
    gateway = Gateway(
        upstream=tls_upstream.address, packages=[bookstore_pb], options=tls_options(private_ca(pki))
    )
    reply = proxy_call(gateway, "GET", "/v1/shelves/many:watch?maxEvents=3")
    assert [line["result"]["bookAdded"]["name"] for line in reply.lines()] == ["b0", "b1", "b2"]


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
    context = private_ca(pki)
    context.load_cert_chain(pki.client_cert, pki.client_key)
    reply = proxy_call(proxy(bookstore_pb, mutual_upstream, context), "GET", "/v1/shelves/fiction")
    assert reply.status == 200, reply.body


def test_mutual_tls_without_a_client_certificate_is_503(
    bookstore_pb: ModuleType, mutual_upstream: UpstreamProcess, pki: Pki
) -> None:
    reply = proxy_call(
        proxy(bookstore_pb, mutual_upstream, private_ca(pki)), "GET", "/v1/shelves/fiction"
    )
    assert (reply.status, reply.json()["code"]) == (503, 14)
