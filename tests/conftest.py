"""Shared fixtures: the example protos generated once per session, and every fixture module of
tests/support/ registered as a plugin (so tests name fixtures without importing them)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from google.protobuf.compiler.plugin_pb2 import CodeGeneratorResponse

from protoc_gen_restmon.plugin.main import run
from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, capture_request

# schemathesis 4.x needs Python 3.11+ (pyproject installs it there only): on 3.10 its test
# module is not collected. It is marked slow, which CI runs on 3.11.
collect_ignore = (
    ["test_openapi_fuzz.py", "test_openapi_fuzz_http.py"] if sys.version_info < (3, 11) else []
)

# RESTMON_UPSTREAM_TRANSPORT=grpcio (or asyncio) runs the suite with proxy mode on that
# transport instead of auto's choice (asyncio for one host:port): `restmon serve` reads it as
# --upstream-transport's default, and here every UpstreamOptions() made without a transport
# takes it. Tests of grpcio's channel itself (GRPCIO_ONLY) run only with grpcio.
UPSTREAM_TRANSPORT = os.environ.get("RESTMON_UPSTREAM_TRANSPORT", "auto")
if UPSTREAM_TRANSPORT != "auto":
    from protoc_gen_restmon.runtime.gateway.upstream import UpstreamOptions

    _defaults = UpstreamOptions.__init__.__defaults__ or ()
    UpstreamOptions.__init__.__defaults__ = (*_defaults[:-1], UPSTREAM_TRANSPORT)


@pytest.fixture(scope="session")
def example_request(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return capture_request(tmp_path_factory.mktemp("capture"), [PROTOS], EXAMPLE_FILES)


@pytest.fixture(scope="session")
def example_response(example_request: bytes) -> CodeGeneratorResponse:
    response = run(example_request)
    assert not response.error, response.error
    return response


@pytest.fixture(scope="session")
def example_files(example_response: CodeGeneratorResponse) -> dict[str, str]:
    return {f.name: f.content for f in example_response.file}


def pytest_report_header() -> str:
    corpus = Path(__file__).resolve().parent.parent / "corpus" / "google-proto-files"
    return f"googleapis corpus: {'present' if corpus.is_dir() else 'absent (make corpus)'}"


pytest_plugins = [
    "tests.support.admin_fixtures",  # an admin stack (monitor, gateway, admin API) per store kind
    "tests.support.browser",  # headless Chromium (playwright over Debian's chromium)
    "tests.support.gateway_fixtures",  # the example protos generated, the three backends
    "tests.support.monitor_fixtures",  # stores parametrized over SQLite and PostgreSQL
    "tests.support.pki",  # a private CA and TLS upstreams
    "tests.support.postgres_server",  # a throwaway PostgreSQL server (session)
    "tests.support.runtime_fixtures",  # the codec's world: ours and an independent _pb2 build
    "tests.support.transcode_fixtures",  # the transcoder's example messages
]
