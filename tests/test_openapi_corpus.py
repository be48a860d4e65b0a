"""Every http-annotated googleapis package's OpenAPI document validates as OpenAPI 3.1.

One protoc run writes them all (`outputs=openapi`), then two processes validate them with
openapi-spec-validator; the test prints both times (`pytest -s`).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.support.router_tools import CORPUS, generate_corpus_routes

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.slow,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="googleapis corpus absent: run `make corpus`"),
]

# Packages of google-proto-files 6.0.1 with at least one HTTP binding (measured; a lower count
# means packages went missing).
MIN_DOCUMENTS = 1


def first_error(path: Path) -> str | None:
    """`path: message (at json/path)` for the document's first validation error, else None."""
    errors = OpenAPIV31SpecValidator(json.loads(path.read_text())).iter_errors()
    error = next(iter(errors), None)
    if error is None:
        return None
    where = "/".join(map(str, error.absolute_path))
    return f"{path}: {error.message[:300]} (at {where})"


def test_every_corpus_document_is_valid_openapi_3_1(tmp_path: Path) -> None:
    started = time.perf_counter()
    generate_corpus_routes(tmp_path, outputs="openapi")
    generated = time.perf_counter()
    documents = sorted(tmp_path.rglob("openapi.json"))
    with ProcessPoolExecutor(2) as pool:
        failures = [e for e in pool.map(first_error, documents, chunksize=4) if e]
    validated = time.perf_counter()
    print(
        f"\n{len(documents)} documents: generated in {generated - started:.1f} s (one protoc "
        f"run), validated in {validated - generated:.1f} s (2 processes)"
    )
    assert len(documents) >= MIN_DOCUMENTS
    assert not failures, f"{len(failures)} invalid documents:\n" + "\n".join(failures[:20])
