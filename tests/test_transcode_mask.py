"""build_request: PATCH's update_mask filled from the body's keys (docs/http-transcoding.md §3)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from tests.support.transcode_fixtures import (
    BOOK,
    IGNORE_FIELDS,
    JSON_DEFAULTS,
    Api,
    Case,
    assert_same,
    binding_of,
    expected,
    transcode,
)

# --- PATCH: update_mask from the body's keys ------------------------------------------------------


def patch(body: bytes, query: str = "", json_options: JsonOptions = JSON_DEFAULTS) -> Case:
    return Case("UpdateBook", BOOK, query, body, "application/json", json_options=json_options)


PATCH_CASES = [
    pytest.param(
        patch(b'{"title": "Dune", "pageCount": 412}'),
        ["title", "page_count"],
        {"title": "Dune", "pageCount": 412},
        id="keys-as-proto-names",
    ),
    pytest.param(
        patch(b'{"isbn": "978", "isbn_10": "0", "copies_sold": "5"}'),
        ["isbn_13", "isbn_10", "copies_sold"],
        {"isbn": "978", "isbn10": "0", "copiesSold": "5"},
        id="explicit-json-name-and-proto-name-keys",
    ),
    pytest.param(
        patch(b'{"price": {"currencyCode": "EUR", "units": "3"}}'),
        ["price.currency_code", "price.units"],
        {"price": {"currencyCode": "EUR", "units": "3"}},
        id="nested-object-to-leaves",
    ),
    pytest.param(
        patch(b'{"labels": {"a": "b"}, "regionalPrices": {"EU": {"units": "1"}}}'),
        ["labels", "regional_prices"],
        {"labels": {"a": "b"}, "regionalPrices": {"EU": {"units": "1"}}},
        id="stops-at-maps",
    ),
    pytest.param(
        patch(b'{"publishTime": "2024-01-01T00:00:00Z", "edition": 2, "audioLength": "5s"}'),
        ["publish_time", "edition", "audio_length"],
        {"publishTime": "2024-01-01T00:00:00Z", "edition": 2, "audioLength": "5s"},
        id="stops-at-well-known-types",
    ),
    pytest.param(
        patch(b'{"reviews": [{"stars": 5}], "authors": ["authors/a"]}'),
        ["reviews", "authors"],
        {"reviews": [{"stars": 5}], "authors": ["authors/a"]},
        id="stops-at-arrays",
    ),
    pytest.param(
        patch(b'{"price": {}, "subtitle": null}'),
        ["price", "subtitle"],
        {"price": {}},
        id="empty-object-and-null-are-leaves",
    ),
    pytest.param(
        patch(b'{"title": "x", "nope": 1}', json_options=IGNORE_FIELDS),
        ["title"],
        {"title": "x"},
        id="ignored-unknown-keys-skipped",
    ),
    pytest.param(
        patch(b'{"title": "x", "isbn": "1"}', query="update_mask=title"),
        ["title"],
        {"title": "x", "isbn": "1"},
        id="mask-from-query-kept",
    ),
    pytest.param(patch(b"{}"), [], {}, id="empty-object-no-paths"),
    pytest.param(patch(b""), [], {}, id="empty-body-no-paths"),
]


@pytest.mark.parametrize(("case", "paths", "book"), PATCH_CASES)
def test_build_request_patch_fills_update_mask(
    api: Api, case: Case, paths: list[str], book: dict[str, Any]
) -> None:
    wanted = expected(api, case, {"book": {"name": BOOK[0], **book}})
    if paths:
        wanted.update_mask.paths.extend(paths)  # type: ignore[attr-defined]
    assert_same(transcode(api, case), wanted)


def test_build_request_patch_explicit_empty_mask_stays_empty(api: Api) -> None:
    actual = transcode(api, patch(b'{"title": "x"}', query="update_mask="))
    assert actual.HasField("update_mask")
    assert list(actual.update_mask.paths) == []  # type: ignore[attr-defined]


def test_build_request_patch_prefers_update_mask_over_other_masks(api: Api) -> None:
    case = Case("Patch", ("sinks/s",), body=b'{"fString": "x", "inner": {"number": 1}}')
    actual = transcode(api, case)
    assert list(actual.update_mask.paths) == ["f_string", "inner.number"]  # type: ignore[attr-defined]
    assert not actual.HasField("read_mask")


def test_build_request_patch_only_mask_field_whatever_its_name(api: Api) -> None:
    case = Case("PatchInner", ("inners/i",), body=b'{"number": 1, "child": {"tags": ["t"]}}')
    actual = transcode(api, case)
    assert list(actual.fields.paths) == ["number", "child.tags"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("http_method", ["PUT", "POST"])
def test_build_request_mask_only_for_patch(api: Api, http_method: str) -> None:
    binding = dataclasses.replace(binding_of(api, patch(b"")), http_method=http_method)
    actual = transcode(api, patch(b'{"title": "x"}'), binding)
    assert not actual.HasField("update_mask")
