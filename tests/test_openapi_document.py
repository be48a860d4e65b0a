"""The OpenAPI builder on the example protos: a valid 3.1 document, paths, operations, bodies."""

from __future__ import annotations

from typing import Any

import pytest

from protoc_gen_restmon.runtime.specs import Binding
from tests.support.openapi_tools import compiled, valid_document


@pytest.fixture(scope="module")
def example(example_request: bytes) -> tuple[list[Any], list[Binding]]:
    return compiled(example_request)


@pytest.fixture(scope="module")
def document(example: tuple[list[Any], list[Binding]]) -> dict[str, Any]:
    return valid_document(*example)


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        op["operationId"]: (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if not method.startswith("x-")
    }


def test_every_binding_is_one_operation(
    example: tuple[list[Any], list[Binding]], document: dict[str, Any]
) -> None:
    _, bindings = example
    found = operations(document)
    assert len(found) == len(bindings)
    assert {op["x-restmon-template"] for _, _, op in found.values()} == {
        b.template for b in bindings
    }


def test_same_input_same_document(example: tuple[list[Any], list[Binding]]) -> None:
    import json

    first = json.dumps(valid_document(*example))
    assert json.dumps(valid_document(*example)) == first


@pytest.mark.parametrize(
    ("operation_id", "kept"),
    [("BookstoreService_UpdateBook", "title"), ("BookstoreService_UpdateShelf", "displayName")],
)
def test_body_field_leaves_out_its_fields_the_path_binds(
    document: dict[str, Any], operation_id: str, kept: str
) -> None:
    """`{book.name=…}` with `body: "book"`: the body is the book without `name` (the URL gives
    it), as `body: "*"` leaves out the request's fields the path binds (CheckoutBook's `name`)."""
    _, _, op = operations(document)[operation_id]
    book, null = op["requestBody"]["content"]["application/json"]["schema"]["anyOf"]
    assert null == {"type": "null"}
    assert "name" not in book["properties"] and kept in book["properties"]
    assert book["additionalProperties"] is False
    _, _, checkout = operations(document)["BookstoreService_CheckoutBook"]
    whole = checkout["requestBody"]["content"]["application/json"]["schema"]
    assert "name" not in whole["properties"] and "memberId" in whole["properties"]
