"""A private PKI made with the openssl CLI, and TLS upstreams (real grpclib servers) using it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.upstream_process import UpstreamProcess


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


@pytest.fixture(name="tls_upstream", scope="module")
def fixture_tls_upstream(
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
