"""Golden outputs: the example protos' OpenAPI document (syrupy). The plugin writes it compact,
on one line; the golden file holds the same document indented (dump_json's default), so that a
change reads as a diff. Its bytes are deterministic (test_openapi_output.py); its YAML text is
checked by reading it back."""

from __future__ import annotations

import json

import pytest
import yaml
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from protoc_gen_restmon.plugin.main import run
from protoc_gen_restmon.runtime.openapi.serialize import dump_json, dump_yaml
from tests.support.protoc_tools import with_parameter


class JsonSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "json"


@pytest.fixture(scope="module")
def documents(example_request: bytes) -> dict[str, str]:
    response = run(with_parameter(example_request, "outputs=openapi"))
    assert not response.error, response.error
    return {f.name: f.content for f in response.file}


def test_the_example_documents_are_the_golden_ones(
    documents: dict[str, str], snapshot: SnapshotAssertion
) -> None:
    assert sorted(documents) == ["bookstore/v1/openapi.json"]
    document = json.loads(documents["bookstore/v1/openapi.json"])
    assert dump_json(document) == snapshot(extension_class=JsonSnapshot)


def test_the_example_document_as_yaml_reads_back_the_same(documents: dict[str, str]) -> None:
    document = json.loads(documents["bookstore/v1/openapi.json"])
    text = dump_yaml(document)
    assert yaml.safe_load(text) == document
    assert text.startswith("openapi: 3.1.0\ninfo:\n  title: bookstore.v1\n")
