"""Golden outputs: the example protos' OpenAPI document, byte for byte (syrupy), as the plugin
writes it (JSON; the YAML text of the same document is checked by reading it back)."""

from __future__ import annotations

import json

import pytest
import yaml
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from protoc_gen_restmon.plugin.main import run
from protoc_gen_restmon.runtime.openapi.serialize import dump_yaml
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
    assert documents["bookstore/v1/openapi.json"] == snapshot(extension_class=JsonSnapshot)


def test_the_example_document_as_yaml_reads_back_the_same(documents: dict[str, str]) -> None:
    document = json.loads(documents["bookstore/v1/openapi.json"])
    text = dump_yaml(document)
    assert yaml.safe_load(text) == document
    assert text.startswith("openapi: 3.1.0\ninfo:\n  title: bookstore.v1\n")
