"""Every http-annotated googleapis package's OpenAPI document validates as OpenAPI 3.1.

One protoc run writes them all (`outputs=openapi`), then two processes validate them with
openapi-spec-validator; the test prints both times (`pytest -s`).

openapi-spec-validator costs 4-7 CPU-seconds per MiB of document (it checks every schema against
the 3.1 dialect's meta-schema), and the corpus writes 131 MiB: ~12 CPU-minutes. `make test`
validates every document up to `RESTMON_OPENAPI_CORPUS_MAX_KIB` (128 KiB by default: 250 of the
477 documents, 15 MiB; 256 KiB would be 353 and 34 MiB); `make openapi-corpus` validates all of
them (`=0`: no limit).
"""

from __future__ import annotations

import json
import os
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

# Packages of google-proto-files 6.0.1 with at least one HTTP binding (477 measured; fewer
# means packages went missing).
MIN_DOCUMENTS = 470
MAX_BYTES = int(os.environ.get("RESTMON_OPENAPI_CORPUS_MAX_KIB", "128")) * 1024


def first_error(path: Path) -> tuple[str | None, float]:
    """`path: message (at json/path)` for the document's first validation error, else None;
    and the CPU seconds the validation took."""
    started = time.process_time()
    errors = OpenAPIV31SpecValidator(json.loads(path.read_text())).iter_errors()
    error = next(iter(errors), None)
    cpu = time.process_time() - started
    if error is None:
        return None, cpu
    where = "/".join(map(str, error.absolute_path))
    return f"{path}: {error.message[:300]} (at {where})", cpu


def test_every_corpus_document_is_valid_openapi_3_1(tmp_path: Path) -> None:
    started = time.perf_counter()
    generate_corpus_routes(tmp_path, outputs="openapi")
    generated = time.perf_counter()
    # Largest first, one at a time: the two processes finish together.
    written = sorted(tmp_path.rglob("openapi.json"), key=lambda p: -p.stat().st_size)
    documents = [p for p in written if not MAX_BYTES or p.stat().st_size <= MAX_BYTES]
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(first_error, documents))
    validated = time.perf_counter()
    failures = [error for error, _ in results if error]
    megabytes = sum(p.stat().st_size for p in documents) / 2**20
    print(
        f"\n{len(documents)} of {len(written)} documents ({megabytes:.0f} MiB): generated in "
        f"{generated - started:.1f} s (one protoc run), validated in "
        f"{validated - generated:.1f} s wall, {sum(cpu for _, cpu in results):.0f} s CPU "
        "(2 processes)"
    )
    assert len(written) >= MIN_DOCUMENTS
    assert len(documents) >= (MIN_DOCUMENTS if not MAX_BYTES else MIN_DOCUMENTS // 2)
    assert not failures, f"{len(failures)} invalid documents:\n" + "\n".join(failures[:20])
