"""Shared fixtures: the example protos generated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.compiler.plugin_pb2 import CodeGeneratorResponse

from protoc_gen_restmon.plugin.main import run
from tests.protoc_tools import EXAMPLE_FILES, PROTOS, capture_request


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


# The example protos generated for the gateway tests (tests/gateway_fixtures.py): session
# fixtures, so every module shares one generation instead of running its own.
from tests.gateway_fixtures import fixture_bookstore_pb, fixture_configured_pb  # noqa: E402, F401

# The monitor's stores: a throwaway PostgreSQL server (session) and a fresh store per test,
# parametrized over SQLite and PostgreSQL (tests/monitor_fixtures.py).
from tests.monitor_fixtures import postgres_databases, store, store_url  # noqa: E402, F401
from tests.postgres_server import postgres  # noqa: E402, F401
