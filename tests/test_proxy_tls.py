"""TLS to the upstream: `Gateway(upstream=…, upstream_tls=…)` against a real grpclib server with
TLS, its certificate signed by a private CA made here with the openssl CLI."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from protoc_gen_restmon.runtime.gateway import Gateway
from tests.proxy_fixtures import proxy_call
from tests.upstream_process import UpstreamProcess


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


@pytest.fixture(name="pki", scope="module")
def fixture_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate it signed for 127.0.0.1 and localhost, and a client one.

    With the extensions Python 3.13's default contexts require (VERIFY_X509_STRICT): key usage
    on the CA, an authority key identifier on the certificates it signs."""
    root = tmp_path_factory.mktemp("pki")
    ca, ca_key, key, csr, cert = (root / n for n in ("ca.pem", "ca.key", "s.key", "s.csr", "s.pem"))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    signed = "authorityKeyIdentifier=keyid,issuer\nbasicConstraints=CA:FALSE\n"
    openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    server_extensions = root / "server.cnf"
    server_extensions.write_text(
        f"{signed}subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", server_extensions,
    )  # fmt: skip
    client_key, client_csr, client = (root / n for n in ("c.key", "c.csr", "c.pem"))
    openssl("req", *ec, "-keyout", client_key, "-out", client_csr, "-subj", "/CN=gateway")
    client_extensions = root / "client.cnf"
    client_extensions.write_text(f"{signed}extendedKeyUsage=clientAuth\n")
    openssl(
        "x509", "-req", "-in", client_csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", client, "-days", "2", "-extfile", client_extensions,
    )  # fmt: skip
    return Pki(ca, cert, key, client, client_key)


@pytest.fixture(name="upstream", scope="module")
def fixture_upstream(
    bookstore_pb: ModuleType, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UpstreamProcess]:
    events = tmp_path_factory.mktemp("tls") / "events.log"
    upstream = UpstreamProcess(bookstore_pb, events, tls=(pki.cert, pki.key))
    upstream.start()
    try:
        yield upstream
    finally:
        upstream.stop()


@pytest.fixture(name="mutual_upstream", scope="module")
def fixture_mutual_upstream(
    bookstore_pb: ModuleType, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UpstreamProcess]:
    """The upstream requiring a client certificate signed by the CA."""
    events = tmp_path_factory.mktemp("mtls") / "events.log"
    upstream = UpstreamProcess(bookstore_pb, events, tls=(pki.cert, pki.key, pki.ca))
    upstream.start()
    try:
        yield upstream
    finally:
        upstream.stop()


def proxy(pb: ModuleType, upstream: UpstreamProcess, tls: bool | ssl.SSLContext | None) -> Gateway:
    return Gateway(upstream=upstream.address, packages=[pb], upstream_tls=tls)


def private_ca(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.set_alpn_protocols(["h2"])
    return context


def test_tls_with_a_private_ca_proxies(
    bookstore_pb: ModuleType, upstream: UpstreamProcess, pki: Pki
) -> None:
    gateway = Gateway(
        upstream=upstream.address, packages=[bookstore_pb], upstream_tls=private_ca(pki)
    )
    reply = proxy_call(gateway, "GET", "/v1/shelves/fiction")
    assert reply.status == 200, reply.body
    assert reply.json()["name"] == "shelves/fiction"


def test_tls_streams(bookstore_pb: ModuleType, upstream: UpstreamProcess, pki: Pki) -> None:
    gateway = Gateway(
        upstream=upstream.address, packages=[bookstore_pb], upstream_tls=private_ca(pki)
    )
    reply = proxy_call(gateway, "GET", "/v1/shelves/many:watch?maxEvents=3")
    assert [line["result"]["bookAdded"]["name"] for line in reply.lines()] == ["b0", "b1", "b2"]


def test_tls_with_system_cas_refuses_the_private_certificate(
    bookstore_pb: ModuleType, upstream: UpstreamProcess
) -> None:
    reply = proxy_call(proxy(bookstore_pb, upstream, True), "GET", "/v1/shelves/fiction")
    assert (reply.status, reply.json()["code"]) == (503, 14)
    assert "CERTIFICATE_VERIFY_FAILED" in reply.json()["message"]


def test_plain_http2_to_a_tls_upstream_fails_fast(
    bookstore_pb: ModuleType, upstream: UpstreamProcess
) -> None:
    reply = proxy_call(proxy(bookstore_pb, upstream, None), "GET", "/v1/shelves/fiction")
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
