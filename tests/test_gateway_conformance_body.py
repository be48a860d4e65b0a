"""The gateway end to end through ASGI: the request body (docs/http-transcoding.md §3).

Body fields and `body: "*"`, the path winning over the body, JSON errors, content types, the size
limit, the PATCH update mask, and client streaming (one message per NDJSON line). Rows are read
as in test_gateway_conformance.py.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from protoc_gen_restmon.runtime.transcode.request import TranscodeOptions
from tests.support.gateway_fixtures import (
    DUNE,
    JSON,
    Backend,
    Served,
    assert_answered,
    assert_status_body,
    call,
    serve,
)

BOOKS = "/v1/shelves/fiction/books"


# --- §3 The body ---

EVERY_KIND_OF_BOOK = (
    b'{"title":"New","isbn":"9780000000002","isbn10":"0000000002","copiesSold":"12",'
    b'"catalogNumber":"18446744073709551615","publishTime":"2020-01-01T00:00:00.5Z",'
    b'"audioLength":"3.5s","edition":2,"subtitle":"","pageCount":0,'
    b'"price":{"currencyCode":"EUR","units":"-3","nanos":-500000000},'
    b'"chapterTitles":{"1":"One"},"genres":["GENRE_FICTION",4],"coverThumbnail":"AAE=",'
    b'"averageRating":"NaN","weightKg":1.5,"labels":{"a":"b"},'
    b'"regionalPrices":{"EU":{"units":"9"}},"reviews":[{"reviewer":"r","stars":5}]}'
)
EVERY_KIND_OF_BOOK_RECEIVED = {
    "title": "New",
    "isbn_13": "9780000000002",
    "isbn_10": "0000000002",
    "copies_sold": "12",
    "catalog_number": "18446744073709551615",
    "publish_time": "2020-01-01T00:00:00.500Z",
    "audio_length": "3.500s",
    "edition": 2,
    "subtitle": "",
    "page_count": 0,
    "price": {"currency_code": "EUR", "units": "-3", "nanos": -500000000},
    "chapter_titles": {"1": "One"},
    "genres": ["GENRE_FICTION", "GENRE_SCIENCE_FICTION"],
    "cover_thumbnail": "AAE=",
    "average_rating": "NaN",
    "weight_kg": 1.5,
    "labels": {"a": "b"},
    "regional_prices": {"EU": {"units": "9"}},
    "reviews": [{"reviewer": "r", "stars": 5}],
}

BODIES = [
    pytest.param(
        "POST",
        "/v1/shelves?shelf_id=poetry",
        JSON,
        b'{"displayName":"Poetry","theme":"GENRE_POETRY"}',
        (
            "create_shelf",
            {"shelf_id": "poetry", "shelf": {"display_name": "Poetry", "theme": "GENRE_POETRY"}},
        ),
        id="body-field-json-names",
    ),
    pytest.param(
        "POST",
        "/v1/shelves?shelfId=poetry&validateOnly=true",
        JSON,
        b'{"display_name":"Poetry","location":{"floor":2}}',
        (
            "create_shelf",
            {
                "shelf_id": "poetry",
                "validate_only": True,
                "shelf": {"display_name": "Poetry", "location": {"floor": 2}},
            },
        ),
        id="body-field-proto-names-and-query",
    ),
    pytest.param(
        "POST",
        "/v1/shelves?shelf_id=p",
        [],
        b'{"displayName":"P"}',
        ("create_shelf", {"shelf_id": "p", "shelf": {"display_name": "P"}}),
        id="no-content-type-is-json",
    ),
    pytest.param(
        "POST",
        "/v1/shelves?shelf_id=p",
        [("content-type", "Application/JSON; charset=UTF-8")],
        b'{"displayName":"P"}',
        ("create_shelf", {"shelf_id": "p", "shelf": {"display_name": "P"}}),
        id="json-media-type-any-case-with-charset",
    ),
    pytest.param(
        "POST",
        "/v1/shelves?shelf_id=p",
        [("content-type", "application/merge-patch+json")],
        b'{"displayName":"P"}',
        ("create_shelf", {"shelf_id": "p", "shelf": {"display_name": "P"}}),
        id="json-structured-suffix",
    ),
    pytest.param(
        "POST",
        "/v1/shelves?shelf_id=p",
        JSON,
        b"",
        ("create_shelf", {"shelf_id": "p"}),
        id="empty-body-leaves-body-field-unset",
    ),
    pytest.param(
        "PUT",
        "/v1/shelves/fiction",
        JSON,
        b'{"name":"shelves/other","displayName":"Renamed"}',
        ("update_shelf", {"shelf": {"name": "shelves/fiction", "display_name": "Renamed"}}),
        id="path-wins-over-body-field",
    ),
    pytest.param(
        "PUT",
        "/v1/shelves/fiction?allowMissing=true",
        JSON,
        b'{"displayName":"Renamed"}',
        (
            "update_shelf",
            {
                "shelf": {"name": "shelves/fiction", "display_name": "Renamed"},
                "allow_missing": True,
            },
        ),
        id="nested-path-var-and-query",
    ),
    pytest.param(
        "POST",
        f"{BOOKS}?book_id=new",
        JSON,
        EVERY_KIND_OF_BOOK,
        (
            "create_book",
            {"parent": "shelves/fiction", "book_id": "new", "book": EVERY_KIND_OF_BOOK_RECEIVED},
        ),
        id="every-kind-of-field",
    ),
    pytest.param(
        "POST",
        f"{BOOKS}?book_id=new",
        JSON,
        b'{"isbn_13":"1","isbn_10":"2","copies_sold":12,"page_count":"7"}',
        (
            "create_book",
            {
                "parent": "shelves/fiction",
                "book_id": "new",
                "book": {"isbn_13": "1", "isbn_10": "2", "copies_sold": "12", "page_count": 7},
            },
        ),
        id="proto-names-and-numbers-as-either",
    ),
    pytest.param(
        "POST",
        f"/v1/{DUNE}:checkout",
        JSON,
        b'{"memberId":"m1","loanPeriod":"1.5s","deposit":{"currencyCode":"EUR","units":"5"}}',
        (
            "checkout_book",
            {
                "name": DUNE,
                "member_id": "m1",
                "loan_period": "1.500s",
                "deposit": {"currency_code": "EUR", "units": "5"},
            },
        ),
        id="body-star-with-duration",
    ),
    pytest.param(
        "POST",
        f"/v1/{DUNE}:checkout",
        JSON,
        b'{"name":"shelves/x/books/y","libraryCard":"c"}',
        ("checkout_book", {"name": DUNE, "library_card": "c"}),
        id="path-wins-over-body-star",
    ),
]


@pytest.mark.parametrize(("method", "target", "headers", "body", "received"), BODIES)
def test_body_fills_the_request(
    example: Served,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    received: tuple[str, dict[str, Any]],
) -> None:
    reply = call(example.gateway, method, target, headers=headers, body=body)
    assert example.requests() == [received]
    assert_answered(reply, 200)


SHELF = "/v1/shelves?shelf_id=s"
BODY_ERRORS = [
    pytest.param(SHELF, JSON, b'{"displayName":', "request body is not valid JSON", id="malformed"),
    pytest.param(
        SHELF,
        JSON,
        b'{"bogus":1}',
        'field "shelf.bogus": no such field in bookstore.v1.Shelf',
        id="unknown-field",
    ),
    pytest.param(
        SHELF,
        JSON,
        b'{"location":{"bogus":1}}',
        'field "shelf.location',
        id="unknown-nested-field",
    ),
    pytest.param(
        SHELF, JSON, b'{"displayName":5}', 'field "shelf.displayName', id="number-for-string"
    ),
    pytest.param(SHELF, JSON, b'{"bookCount":true}', 'field "shelf.bookCount', id="bool-for-int64"),
    pytest.param(SHELF, JSON, b'{"labels":[]}', 'field "shelf.labels', id="array-for-map"),
    pytest.param(
        SHELF, JSON, b'{"location":"x"}', 'field "shelf.location', id="string-for-message"
    ),
    pytest.param(
        SHELF, JSON, b'{"theme":"NOPE"}', '"NOPE" is not a value of enum', id="unknown-enum-name"
    ),
    pytest.param(
        SHELF, JSON, b'{"createTime":"yesterday"}', 'field "shelf.createTime', id="bad-timestamp"
    ),
    pytest.param(
        SHELF,
        JSON,
        b'{"location":{"floor":2147483648}}',
        'field "shelf.location.floor',
        id="int32-out-of-range",
    ),
    pytest.param(
        SHELF,
        JSON,
        b'{"bookCount":"99999999999999999999"}',
        'field "shelf.bookCount',
        id="int64-out-of-range",
    ),
    pytest.param(
        SHELF,
        JSON,
        b'{"displayName":"a","displayName":"b"}',
        'key "displayName" appears twice',
        id="duplicate-key",
    ),
    pytest.param(SHELF, JSON, b'{"bookCount":NaN}', "NaN is not JSON", id="bare-NaN-token"),
    pytest.param(
        SHELF, JSON, b"\xff{}", "request body is not valid JSON: not UTF-8 at byte 0", id="not-utf8"
    ),
    pytest.param(SHELF, JSON, b"[1]", "must be a JSON object", id="array-for-message"),
    pytest.param(SHELF, JSON, b'"shelf"', "must be a JSON object", id="string-for-message-body"),
    pytest.param(
        f"{BOOKS}?book_id=b",
        JSON,
        b'{"price":{"units":"1"},"donor":"x"}',
        "oneof acquisition",
        id="two-oneof-members",
    ),
    pytest.param(
        f"/v1/{DUNE}:checkout",
        JSON,
        b'{"memberId":"m","libraryCard":"c"}',
        "oneof borrower",
        id="two-oneof-members-body-star",
    ),
    pytest.param(
        SHELF,
        JSON,
        b'{"theme":1.5}',
        'field "shelf.theme',
        id="fraction-for-enum",
    ),
    pytest.param(
        SHELF,
        JSON,
        b'{"theme":{}}',
        "bookstore.v1.Genre",
        id="object-for-enum-names-the-type",
    ),
]


@pytest.mark.parametrize(("target", "headers", "body", "fragment"), BODY_ERRORS)
def test_bad_bodies_are_400(
    example: Served, target: str, headers: list[tuple[str, str]], body: bytes, fragment: str
) -> None:
    reply = call(example.gateway, "POST", target, headers=headers, body=body)
    assert_status_body(reply, 400, 3, fragment)
    assert example.requests() == []


NOT_JSON = [
    pytest.param("text/plain", id="text"),
    pytest.param("application/x-www-form-urlencoded", id="form"),
    pytest.param("multipart/form-data; boundary=x", id="multipart"),
    pytest.param("application/json; charset=latin-1", id="json-not-utf8"),
    pytest.param("application/jsonx", id="json-lookalike"),
]


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_a_body_that_is_not_json_is_415(example: Served, content_type: str) -> None:
    reply = call(
        example.gateway, "POST", SHELF, headers=[("content-type", content_type)], body=b"{}"
    )
    assert_status_body(reply, 415, 3, f'unsupported content type "{content_type}"')
    assert example.requests() == []


NO_BODY_ROUTES = [
    pytest.param("GET", "/v1/shelves", "GET /v1/shelves takes no request body", id="GET"),
    pytest.param(
        "DELETE", "/v1/shelves/fiction", "DELETE /v1/shelves/{shelf} takes no", id="DELETE"
    ),
    pytest.param("HEAD", "/v1/shelves/fiction", "takes no request body", id="HEAD"),
]


@pytest.mark.parametrize(("method", "target", "fragment"), NO_BODY_ROUTES)
def test_a_body_on_a_route_without_body_is_400(
    example: Served, method: str, target: str, fragment: str
) -> None:
    reply = call(example.gateway, method, target, headers=JSON, body=b'{"x":1}')
    assert_status_body(reply, 400, 3, fragment, "got 7 bytes")
    assert example.requests() == []


def test_unknown_body_fields_are_dropped_with_the_json_option(
    bookstore_pb: ModuleType,
    backend: Backend,
) -> None:
    served = serve(
        bookstore_pb, backend=backend, json_options=JsonOptions(ignore_unknown_fields=True)
    )
    body = b'{"bogus":1,"displayName":"D","location":{"wing":"W"}}'
    reply = call(served.gateway, "POST", SHELF, headers=JSON, body=body)
    shelf = {"display_name": "D", "location": {}}
    assert served.requests() == [("create_shelf", {"shelf_id": "s", "shelf": shelf})]
    assert reply.status == 200
    assert reply.json()["displayName"] == "D"


# --- §3 Body size ---

LIMIT = 64
PADDED = b'{"displayName":"x"}'.ljust(LIMIT)  # JSON with trailing spaces: exactly LIMIT bytes

BODY_SIZES = [
    pytest.param("POST", SHELF, [PADDED], 200, id="at-limit-one-chunk"),
    pytest.param("POST", SHELF, [PADDED[:10], PADDED[10:]], 200, id="at-limit-two-chunks"),
    pytest.param("POST", SHELF, [PADDED + b" "], 413, id="over-limit-one-chunk"),
    pytest.param("POST", SHELF, [PADDED, b" "], 413, id="over-limit-last-chunk"),
    pytest.param("POST", SHELF, [b" "] * (LIMIT + 1), 413, id="over-limit-many-chunks"),
    pytest.param("GET", "/v1/shelves", [b" " * (LIMIT + 1)], 413, id="over-limit-no-body-route"),
]


@pytest.mark.parametrize(("method", "target", "chunks", "status"), BODY_SIZES)
def test_a_body_over_the_limit_is_413(
    bookstore_pb: ModuleType,
    backend: Backend,
    method: str,
    target: str,
    chunks: list[bytes],
    status: int,
) -> None:
    served = serve(bookstore_pb, backend=backend, transcode=TranscodeOptions(max_body_bytes=LIMIT))
    reply = call(served.gateway, method, target, headers=JSON, body=chunks)
    if status == 413:
        assert_status_body(reply, 413, 8, f"limit of {LIMIT} bytes")
        assert served.requests() == []
    else:
        assert reply.status == 200
        assert reply.json()["displayName"] == "x"


def test_the_default_body_limit_is_4_mib(example: Served) -> None:
    mib = 1024 * 1024
    reply = call(example.gateway, "POST", SHELF, headers=JSON, body=[b" " * mib] * 4 + [b" "])
    assert_status_body(reply, 413, 8, "limit of 4194304 bytes")


def test_a_body_of_4_mib_is_read(example: Served) -> None:
    body = b'{"displayName":"big"}'.ljust(4 * 1024 * 1024)
    reply = call(example.gateway, "POST", SHELF, headers=JSON, body=[body[:65536], body[65536:]])
    assert reply.status == 200
    assert reply.json()["displayName"] == "big"


# --- §3 PATCH: the update mask from the body's keys ---

PATCHES = [
    pytest.param(
        "",
        b'{"title":"T","pageCount":3}',
        ["title", "page_count"],
        {"title": "T", "pageCount": 3, "copiesSold": "20000000"},
        id="top-level-keys",
    ),
    pytest.param(
        "",
        b'{"price":{"units":"2","currencyCode":"EUR"}}',
        ["price.units", "price.currency_code"],
        {"price": {"units": "2", "currencyCode": "EUR", "nanos": 0}, "title": "Dune"},
        id="nested-message-keys",
    ),
    pytest.param(
        "",
        b'{"labels":{"signed":"yes"}}',
        ["labels"],
        {"labels": {"signed": "yes"}},
        id="map-is-one-path",
    ),
    pytest.param(
        "",
        b'{"publishTime":"2020-01-01T00:00:00Z"}',
        ["publish_time"],
        {"publishTime": "2020-01-01T00:00:00Z"},
        id="well-known-type-is-one-path",
    ),
    pytest.param(
        "",
        b'{"isbn":"123"}',
        ["isbn_13"],
        {"isbn": "123", "title": "Dune"},
        id="explicit-json-name",
    ),
    pytest.param("", b'{"isbn_13":"123"}', ["isbn_13"], {"isbn": "123"}, id="proto-name-key"),
    pytest.param(
        "?update_mask=title",
        b'{"title":"T","pageCount":3}',
        ["title"],
        {"title": "T", "copiesSold": "20000000"},
        id="explicit-mask-kept",
    ),
    pytest.param(
        "?updateMask=", b'{"title":"T"}', [], {"title": "Dune"}, id="explicit-empty-mask-kept"
    ),
    pytest.param("", b"{}", None, {"title": "Dune"}, id="empty-object-no-mask"),
]


@pytest.mark.parametrize(("query", "body", "mask", "updated"), PATCHES)
def test_patch_fills_an_absent_update_mask_from_the_body(
    example: Served, query: str, body: bytes, mask: list[str] | None, updated: dict[str, Any]
) -> None:
    reply = call(example.gateway, "PATCH", f"/v1/{DUNE}{query}", headers=JSON, body=body)
    [(handler, request)] = example.messages()
    assert handler == "update_book"
    given = list(request.update_mask.paths) if request.HasField("update_mask") else None
    assert given == mask
    assert reply.status == 200
    book = reply.json()
    assert {key: book.get(key) for key in updated} == updated


# --- §3 Client streaming: one request message per NDJSON body line ---

A = b'{"name":"shelves/fiction/books/a","title":"A"}'
B = b'{"name":"shelves/fiction/books/b"}'
IMPORTED = {
    "importedCount": 2,
    "bookNames": ["shelves/fiction/books/a", "shelves/fiction/books/b"],
    "failures": {},
}

CLIENT_STREAMS = [
    pytest.param("application/json", [A + b"\n" + B + b"\n"], IMPORTED, id="one-chunk"),
    pytest.param(
        "application/json", [A[:9], A[9:] + b"\n" + B[:5], B[5:] + b"\n"], IMPORTED, id="split"
    ),
    pytest.param("application/json", [A + b"\n" + B], IMPORTED, id="no-final-newline"),
    pytest.param(
        "application/json",
        [b"\n" + A + b"\r\n\n \n" + B + b"\r\n"],
        IMPORTED,
        id="blank-lines-crlf",
    ),
    pytest.param("application/x-ndjson", [A + b"\n" + B + b"\n"], IMPORTED, id="ndjson-type"),
    pytest.param("application/jsonl", [A + b"\n" + B + b"\n"], IMPORTED, id="jsonl-type"),
    pytest.param(
        "application/json",
        [b""],
        {"importedCount": 0, "bookNames": [], "failures": {}},
        id="empty-stream",
    ),
]


@pytest.mark.parametrize(("content_type", "chunks", "response"), CLIENT_STREAMS)
def test_client_streaming_reads_one_message_per_line(
    example: Served, content_type: str, chunks: list[bytes], response: dict[str, Any]
) -> None:
    headers = [("content-type", content_type)]
    reply = call(example.gateway, "POST", "/v1/books:import", headers=headers, body=chunks)
    assert reply.status == 200
    assert reply.header("content-type") == "application/json"
    assert reply.json() == response
    assert [name for name, _ in example.requests()] == ["import_books"] * len(response["bookNames"])
    assert [request["name"] for _, request in example.requests()] == response["bookNames"]


CLIENT_STREAM_ERRORS = [
    pytest.param(
        "application/json", A + b"\n{bad\n", 400, 3, "not valid JSON", id="malformed-line"
    ),
    pytest.param(
        "application/json",
        A + b'\n{"bogus":1}\n',
        400,
        3,
        'field "bogus": no such field',
        id="unknown-field-line",
    ),
    pytest.param("application/json", b"[1]\n", 400, 3, "must be a JSON object", id="array-line"),
    pytest.param(
        "text/plain", A + b"\n", 415, 3, 'unsupported content type "text/plain"', id="not-json"
    ),
    pytest.param(
        "application/json", A + b"\n" + b" " * 80, 413, 8, "64 bytes", id="line-over-limit"
    ),
]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code", "fragment"), CLIENT_STREAM_ERRORS
)
def test_client_streaming_refuses_bad_lines(
    bookstore_pb: ModuleType,
    backend: Backend,
    content_type: str,
    body: bytes,
    status: int,
    code: int,
    fragment: str,
) -> None:
    served = serve(bookstore_pb, backend=backend, transcode=TranscodeOptions(max_body_bytes=LIMIT))
    headers = [("content-type", content_type)]
    reply = call(served.gateway, "POST", "/v1/books:import", headers=headers, body=body)
    assert_status_body(reply, status, code, fragment)


def test_client_streaming_refuses_query_parameters(example: Served) -> None:
    reply = call(example.gateway, "POST", "/v1/books:import?title=x", headers=JSON, body=A)
    assert_status_body(reply, 400, 3, "every field not in the URL path comes from the body")


# A Timestamp and a Duration finer than a microsecond. betterproto holds them as datetime and
# timedelta, which keep microseconds: a betterproto service (in process, or the grpclib
# upstream) gets and answers the Timestamp truncated and the Duration rounded to a microsecond;
# a grpcio upstream (upb messages) keeps all nine digits. The README says so ("Timestamps and
# Durations finer than a microsecond").
NANOS_BOOK = (
    b'{"title":"Precise","publishTime":"2020-01-01T00:00:00.123456789Z",'
    b'"audioLength":"1.123456789s"}'
)
BETTERPROTO_BACKENDS = {"in-process", "grpclib"}


def test_nanoseconds_are_cut_to_microseconds_by_betterproto_services(
    example: Served, backend: Backend
) -> None:
    reply = call(example.gateway, "POST", f"{BOOKS}?book_id=precise", headers=JSON, body=NANOS_BOOK)

    assert_answered(reply, 200)
    [(_, received)] = example.requests()
    answered = reply.json()
    if backend.name in BETTERPROTO_BACKENDS:
        expected = ("2020-01-01T00:00:00.123456Z", "1.123457s")
    else:
        expected = ("2020-01-01T00:00:00.123456789Z", "1.123456789s")
    assert (received["book"]["publish_time"], received["book"]["audio_length"]) == expected
    assert (answered["publishTime"], answered["audioLength"]) == expected
