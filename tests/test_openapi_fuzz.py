"""schemathesis (4.x) against the example gateway in process (`schemathesis.openapi.from_asgi`),
reading the document the gateway serves: for each operation, requests generated from it, valid
(`positive`) and invalid (`negative`), with every check of issue 14: schemathesis' defaults plus
positive_data_acceptance, negative_data_rejection, response_schema_conformance,
status_code_conformance and content_type_conformance, and each NDJSON line of a stream against
its schema (tests/support/fuzz.py has the checks, the operations and the hooks).

Each operation is fuzzed in both modes unless `LEFT_OUT` says why not: what fails today (for the
lead: the builder or the decoder has to change) and what schemathesis cannot generate. A test
checks that `FUZZED` lists every operation of the document. Examples are bounded
and derandomized (the same requests on every run); `RESTMON_FUZZ_EXAMPLES` raises the bound.
Two cases in three with a valid path name real resources (`fuzz.real_ids`), so the 200 paths
run too. tests/test_openapi_fuzz_http.py runs the same over real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import schemathesis
from schemathesis.generation import GenerationMode

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.gateway.app import Gateway
from tests.support.fuzz import (
    FUZZED,
    LEFT_OUT,
    NDJSON,
    NEGATIVE,
    POSITIVE,
    TIMEOUT,
    fuzz,
    install,
    ndjson_lines_conform,
    operations,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]


@pytest.fixture(scope="module", name="api_schema")
def fixture_api_schema(bookstore_pb: ModuleType) -> Iterator[Any]:
    app = Gateway(services=[make_service(bookstore_pb)])
    yield install(schemathesis.openapi.from_asgi("/openapi.json", app))


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    assert operations(api_schema) == set(FUZZED)
    assert {(method, path) for method, path, _ in LEFT_OUT} <= set(FUZZED)


@pytest.mark.parametrize("mode", [POSITIVE, NEGATIVE], ids=lambda mode: mode.value)
@pytest.mark.parametrize(("method", "path"), FUZZED)
def test_operation_keeps_its_document(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    if (method, path, mode) in LEFT_OUT:
        pytest.skip(LEFT_OUT[method, path, mode])
    statuses = fuzz(api_schema, method, path, mode)
    if mode is POSITIVE:  # real_ids: some valid requests reach a real resource
        assert any(200 <= status < 300 for status in statuses), statuses


def test_ndjson_lines_are_checked_against_their_schema(api_schema: Any) -> None:
    """`ndjson_lines_conform` passes WatchShelf's stream and fails it once a line is off the
    schema of one line (schemathesis itself skips the media type)."""
    shelf = {"shelf": "watched"}
    api_schema["/v1/shelves"]["POST"].Case(query={"shelfId": "watched"}, body={}).call()
    books = api_schema["/v1/shelves/{shelf}/books"]["POST"]
    books.Case(path_parameters=shelf, query={"bookId": "one"}, body={"title": "One"}).call()
    case = api_schema["/v1/shelves/{shelf}:watch"]["GET"].Case(path_parameters=shelf)
    response = case.call()
    assert response.headers["content-type"] == [NDJSON]
    assert len(response.content.splitlines()) == 1
    assert ndjson_lines_conform(None, response, case) is True  # type: ignore[arg-type]
    response.content += b'{"result": {"shelf": 7}}\n'
    response.content_size = len(response.content)
    with pytest.raises(AssertionError, match="NDJSON line 2 does not match its schema"):
        ndjson_lines_conform(None, response, case)  # type: ignore[arg-type]
