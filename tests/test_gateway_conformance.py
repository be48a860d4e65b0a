"""The gateway end to end through ASGI: routing (docs/http-transcoding.md §2) and the query (§3).

Every row is one HTTP request to a `Gateway` over the example Bookstore (protos/ generated for
real, examples/bookstore.py with recording, tests/support/gateway_fixtures.py). A row names what the
handler must receive, as `json_format.MessageToDict` with proto field names, and what the client
must get back. The body (§3) is in test_gateway_conformance_body.py, responses and errors (§4,
§5) in test_gateway_conformance_response.py.

Every test of the three modules runs on three backends (`backend`,
tests/support/gateway_fixtures.py): in process, and in proxy mode in front of a real grpclib server
and a real grpcio server on loopback, where the upstream's handlers must receive exactly what an
in-process handler would. The real differences are in test_gateway_conformance_response.py: how each
server reports a handler's crash, and the codes a server cannot send (in-process-only rows).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

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
FILES = f"/v1/{DUNE}/files"
RESERVED = "%21%23%24%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D"  # RFC 6570 reserved, escaped


# --- §2 Matching a request to a route ---

ROUTED = [
    pytest.param("GET", "/v1/shelves", "list_shelves", {}, 200, id="literal-route"),
    pytest.param("GET", "/v1/shelves/", "list_shelves", {}, 200, id="trailing-slash-ignored"),
    pytest.param("GET", "/v1/genres", "list_genres", {}, 200, id="other-literal-route"),
    pytest.param(
        "GET", "/v1/shelves/fiction", "get_shelf", {"shelf": "fiction"}, 200, id="single-var"
    ),
    pytest.param(
        "HEAD",
        "/v1/shelves/fiction",
        "check_shelf_exists",
        {"name": "shelves/fiction"},
        200,
        id="custom-HEAD-binding-beats-GET",
    ),
    pytest.param("HEAD", "/v1/shelves", "list_shelves", {}, 200, id="HEAD-falls-back-to-GET"),
    pytest.param(
        "DELETE", "/v1/shelves/fiction", "delete_shelf", {"shelf": "fiction"}, 200, id="DELETE"
    ),
    pytest.param(
        "GET", BOOKS, "list_books", {"parent": "shelves/fiction"}, 200, id="multi-var-then-literal"
    ),
    pytest.param("GET", f"/v1/{DUNE}", "get_book", {"name": DUNE}, 200, id="multi-segment-var"),
    pytest.param(
        "GET",
        "/v1/authors/herbert/books/dune",
        "get_book",
        {"name": "authors/herbert/books/dune"},
        404,
        id="additional-binding",
    ),
    pytest.param(
        "GET", "/v1/authors/herbert", "get_author", {"name": "authors/herbert"}, 200, id="author"
    ),
    pytest.param(
        "GET",
        f"/v1/{DUNE}/chapters/1",
        "get_chapter",
        {"book": DUNE, "chapter_number": 1},
        200,
        id="two-vars-second-int32",
    ),
    pytest.param(
        "GET",
        f"{FILES}/covers/front.png",
        "get_book_file",
        {"name": f"{DUNE}/files/covers/front.png"},
        200,
        id="deep-wildcard-takes-segments",
    ),
    pytest.param(
        "GET",
        FILES,
        "get_book_file",
        {"name": f"{DUNE}/files"},
        200,
        id="deep-wildcard-takes-none",
    ),
    pytest.param(
        "GET",
        "/v1/shelves/s1/books/stats/summary",
        "get_store_stats",
        {"shelf": "shelves/s1"},
        200,
        id="literal-beats-wildcard",
    ),
    pytest.param(
        "GET",
        "/v1/shelves/fiction/books/stats",
        "get_book",
        {"name": "shelves/fiction/books/stats"},
        404,
        id="backtracks-from-literal-to-wildcard",
    ),
    pytest.param(
        "GET",
        "/v1/shelves/s1/books/stats/chapters/2",
        "get_chapter",
        {"book": "shelves/s1/books/stats", "chapter_number": 2},
        404,
        id="backtracks-two-segments-deep",
    ),
    pytest.param(
        "GET",
        "/v1/shelves/s1/books/stats/files/x",
        "get_book_file",
        {"name": "shelves/s1/books/stats/files/x"},
        200,
        id="backtracks-into-deep-wildcard",
    ),
    pytest.param(
        "GET", "/v1/stats/a/b", "get_store_stats", {"shelf": "a/b"}, 200, id="deep-wildcard-at-end"
    ),
    pytest.param(
        "GET",
        "/v1/stats/a/b/summary",
        "get_store_stats",
        {"shelf": "a/b"},
        200,
        id="deep-wildcard-then-literal",
    ),
    pytest.param(
        "GET", "/v1/stats", "get_store_stats", {}, 200, id="deep-wildcard-matches-nothing"
    ),
    pytest.param(
        "GET",
        "/v1/shelves/fiction:watch",
        "watch_shelf",
        {"name": "shelves/fiction"},
        200,
        id="declared-verb",
    ),
    pytest.param(
        "GET",
        "/v1/shelves/a:b",
        "get_shelf",
        {"shelf": "a:b"},
        404,
        id="undeclared-verb-stays-in-segment",
    ),
    pytest.param(
        "GET",
        "/v1/shelves/a:import",
        "get_shelf",
        {"shelf": "a:import"},
        404,
        id="verb-of-a-POST-route-is-text-for-GET",
    ),
    pytest.param(
        "GET",
        f"/v1/{DUNE}:checkout",
        "get_book",
        {"name": f"{DUNE}:checkout"},
        404,
        id="verb-of-a-POST-route-is-text-in-multi-var",
    ),
    pytest.param(
        "GET",
        "/v1/shelves/a%3Awatch",
        "get_shelf",
        {"shelf": "a:watch"},
        404,
        id="encoded-colon-never-starts-a-verb",
    ),
    pytest.param(
        "GET",
        "/v1/shelves/fiction:watch:watch",
        "watch_shelf",
        {"name": "shelves/fiction:watch"},
        404,
        id="verb-after-the-last-colon-only",
    ),
    pytest.param(
        "GET",
        "/v1/sh%65lves/fiction",
        "get_shelf",
        {"shelf": "fiction"},
        200,
        id="escaped-unreserved-char-in-literal",
    ),
    pytest.param(
        "DELETE", f"/v1/{DUNE}", "delete_book", {"name": DUNE}, 200, id="DELETE-multi-var"
    ),
]


@pytest.mark.parametrize(("method", "target", "handler", "request_dict", "status"), ROUTED)
def test_routing_calls_the_most_specific_binding(
    configured: Served,
    method: str,
    target: str,
    handler: str,
    request_dict: dict[str, Any],
    status: int,
) -> None:
    reply = call(configured.gateway, method, target)
    assert configured.requests() == [(handler, request_dict)]
    assert_answered(reply, status)


NOT_ROUTED = [
    pytest.param("GET", "/nothing", 404, None, "no route matches the path '/nothing'", id="404"),
    pytest.param("GET", "/", 404, None, "no route matches the path '/'", id="404-root"),
    pytest.param("GET", "/v1", 404, None, "'/v1'", id="404-prefix-of-routes"),
    pytest.param(
        "GET", "/V1/shelves", 404, None, "'/V1/shelves'", id="404-literals-case-sensitive"
    ),
    pytest.param("GET", "/v1//shelves", 404, None, "empty segment", id="404-empty-segment"),
    pytest.param(
        "GET", "/v1/shelves//books", 404, None, "empty segment", id="404-star-never-empty"
    ),
    pytest.param(
        "GET", f"/v1/{DUNE}/chapters/1/extra", 404, None, "no route", id="404-too-many-segments"
    ),
    pytest.param("GET", "/v1/books:other", 404, None, "'/v1/books:other'", id="404-unknown-verb"),
    pytest.param("DELETE", "/v1/shelves", 405, "GET, HEAD, POST", "DELETE", id="405-collection"),
    pytest.param(
        "POST", "/v1/shelves/fiction", 405, "DELETE, GET, HEAD, PUT", "POST", id="405-resource"
    ),
    pytest.param("GET", "/v1/books:import", 405, "POST", "method GET", id="405-verb-route"),
    pytest.param("PATCH", "/v1/genres", 405, "GET, HEAD", "PATCH", id="405-GET-implies-HEAD"),
    pytest.param(
        "get", "/v1/shelves", 405, "GET, HEAD, POST", "method get", id="405-methods-case-sensitive"
    ),
    pytest.param(
        "OPTIONS", "/v1/shelves/fiction", 405, "DELETE, GET, HEAD, PUT", "OPTIONS", id="405-OPTIONS"
    ),
    pytest.param("POST", f"{FILES}/a/b", 405, "GET, HEAD", "POST", id="405-deep-wildcard-route"),
]


@pytest.mark.parametrize(("method", "target", "status", "allow", "fragment"), NOT_ROUTED)
def test_unroutable_requests_get_404_or_405_with_allow(
    configured: Served, method: str, target: str, status: int, allow: str | None, fragment: str
) -> None:
    reply = call(configured.gateway, method, target)
    assert_status_body(reply, status, {404: 5, 405: 12}[status], fragment)
    assert reply.header("allow") == allow
    assert configured.requests() == []


MALFORMED_PATHS = [
    pytest.param("/v1/shelves/a%zz", "malformed percent-escape '%zz'", id="non-hex-escape"),
    pytest.param("/v1/shelves/%", "malformed percent-escape '%'", id="lone-percent"),
    pytest.param("/v1/shelves/ab%2", "malformed percent-escape '%2'", id="truncated-escape"),
    pytest.param(f"/v1/{DUNE}/files/%G1", "'%G1'", id="bad-escape-in-deep-wildcard"),
    pytest.param("/v1/shelves/%FF", "does not percent-decode to UTF-8", id="not-utf8"),
    pytest.param(f"{FILES}/a%C3", "UTF-8", id="not-utf8-in-deep-wildcard"),
]


@pytest.mark.parametrize(("target", "fragment"), MALFORMED_PATHS)
def test_malformed_path_escapes_are_400(configured: Served, target: str, fragment: str) -> None:
    reply = call(configured.gateway, "GET", target)
    assert_status_body(reply, 400, 3, fragment)
    assert configured.requests() == []


PERCENT_DECODING = [
    pytest.param("/v1/shelves/a%2Fb", "get_shelf", {"shelf": "a/b"}, id="single-var-%2F-decoded"),
    pytest.param(
        f"/v1/shelves/x{RESERVED}",
        "get_shelf",
        {"shelf": "x!#$&'()*+,/:;=?@[]"},
        id="single-var-reserved-decoded",
    ),
    pytest.param("/v1/shelves/caf%C3%A9", "get_shelf", {"shelf": "café"}, id="single-var-utf8"),
    pytest.param("/v1/shelves/a%20b", "get_shelf", {"shelf": "a b"}, id="single-var-space"),
    pytest.param("/v1/shelves/a+b", "get_shelf", {"shelf": "a+b"}, id="plus-is-a-plus-in-path"),
    pytest.param("/v1/shelves/a%2Bb", "get_shelf", {"shelf": "a+b"}, id="escaped-plus"),
    pytest.param("/v1/shelves/%2541", "get_shelf", {"shelf": "%41"}, id="decoded-exactly-once"),
    pytest.param(
        f"{FILES}/y%2Fz%3Aw%20v",
        "get_book_file",
        {"name": f"{DUNE}/files/y%2Fz%3Aw v"},
        id="multi-var-spec-example",
    ),
    pytest.param(
        f"{FILES}/x{RESERVED}",
        "get_book_file",
        {"name": f"{DUNE}/files/x{RESERVED}"},
        id="multi-var-keeps-every-reserved-escape",
    ),
    pytest.param(
        f"{FILES}/a%2fb%3a",
        "get_book_file",
        {"name": f"{DUNE}/files/a%2fb%3a"},
        id="multi-var-keeps-escapes-as-written",
    ),
    pytest.param(
        f"{FILES}/caf%C3%A9%20%41%7E%25",
        "get_book_file",
        {"name": f"{DUNE}/files/café A~%"},
        id="multi-var-decodes-unreserved",
    ),
    pytest.param(
        f"{FILES}/a+b", "get_book_file", {"name": f"{DUNE}/files/a+b"}, id="multi-var-plus"
    ),
    pytest.param(
        "/v1/shelves/s%2Fx/books/b",
        "get_book",
        {"name": "shelves/s%2Fx/books/b"},
        id="star-inside-multi-var-keeps-%2F",
    ),
    pytest.param(
        "/v1/shelves/a%3Ab/books",
        "list_books",
        {"parent": "shelves/a%3Ab"},
        id="multi-var-before-literal",
    ),
]

# The configured package's service config sets `fully_decode_reserved_expansion`: it applies to
# every binding of that generation run, the annotated ones too (docs/http-transcoding.md §1).
FULLY_DECODED = [
    pytest.param(
        "/v1/stats/y%2Fz%3Aw%20v",
        "get_store_stats",
        {"shelf": "y%2Fz:w v"},
        id="fully-decoded-spec-example",
    ),
    pytest.param(
        f"/v1/stats/x{RESERVED}",
        "get_store_stats",
        {"shelf": "x!#$&'()*+,%2F:;=?@[]"},
        id="fully-decoded-keeps-only-%2F",
    ),
    pytest.param(
        "/v1/stats/a%2fb%2Bc", "get_store_stats", {"shelf": "a%2fb+c"}, id="fully-decoded-%2f"
    ),
    pytest.param(
        f"{FILES}/y%2Fz%3Aw%20v",
        "get_book_file",
        {"name": f"{DUNE}/files/y%2Fz:w v"},
        id="annotated-multi-var-fully-decoded",
    ),
    pytest.param(
        "/v1/shelves/a%3Ab/books",
        "list_books",
        {"parent": "shelves/a:b"},
        id="annotated-multi-var-before-literal-fully-decoded",
    ),
]


@pytest.mark.parametrize(("target", "handler", "request_dict"), PERCENT_DECODING)
def test_path_variables_are_percent_decoded(
    example: Served, target: str, handler: str, request_dict: dict[str, Any]
) -> None:
    reply = call(example.gateway, "GET", target)
    assert example.requests() == [(handler, request_dict)]
    assert reply.status in (200, 404)  # whether the example holds that resource


@pytest.mark.parametrize(("target", "handler", "request_dict"), FULLY_DECODED)
def test_fully_decoded_reserved_expansion_applies_to_the_whole_run(
    configured: Served, target: str, handler: str, request_dict: dict[str, Any]
) -> None:
    reply = call(configured.gateway, "GET", target)
    assert configured.requests() == [(handler, request_dict)]
    assert reply.status in (200, 404)


# --- §3 Query parameters ---

QUERY = [
    pytest.param(
        "/v1/shelves?page.page_size=10&page.page_token=abc",
        {"page": {"page_size": 10, "page_token": "abc"}},
        id="nested-proto-names",
    ),
    pytest.param(
        "/v1/shelves?page.pageSize=10&page.pageToken=abc",
        {"page": {"page_size": 10, "page_token": "abc"}},
        id="nested-json-names",
    ),
    pytest.param(
        "/v1/shelves?location.floor=-2&location.building=Main",
        {"location": {"floor": -2, "building": "Main"}},
        id="nested-message-of-same-file",
    ),
    pytest.param(
        "/v1/shelves?page%2Epage_size=5", {"page": {"page_size": 5}}, id="percent-encoded-key"
    ),
    pytest.param("/v1/shelves?theme=GENRE_POETRY", {"theme": "GENRE_POETRY"}, id="enum-by-name"),
    pytest.param("/v1/shelves?theme=6", {"theme": "GENRE_POETRY"}, id="enum-by-number"),
    pytest.param("/v1/shelves?theme=99", {"theme": 99}, id="enum-unknown-number-kept"),
    pytest.param(
        f"{BOOKS}?genres=GENRE_FICTION&genres=3",
        {"genres": ["GENRE_FICTION", "GENRE_MYSTERY"]},
        id="repeated-keys",
    ),
    pytest.param(
        f"{BOOKS}?labels[signed]=yes&labels[lang]=en",
        {"labels": {"signed": "yes", "lang": "en"}},
        id="map-entries",
    ),
    pytest.param(
        f"{BOOKS}?labels%5Bsigned%5D=yes", {"labels": {"signed": "yes"}}, id="map-escaped-brackets"
    ),
    pytest.param(f"{BOOKS}?minPageCount=100", {"min_page_count": 100}, id="wrapper-json-name"),
    pytest.param(f"{BOOKS}?min_page_count=0", {"min_page_count": 0}, id="wrapper-zero-present"),
    pytest.param(f"{BOOKS}?min_rating=4.5", {"min_rating": 4.5}, id="double"),
    pytest.param(f"{BOOKS}?min_rating=NaN", {"min_rating": "NaN"}, id="double-NaN"),
    pytest.param(f"{BOOKS}?min_rating=Infinity", {"min_rating": "Infinity"}, id="double-inf"),
    pytest.param(f"{BOOKS}?min_rating=-Infinity", {"min_rating": "-Infinity"}, id="double-ninf"),
    pytest.param(
        f"{BOOKS}?published_after=2024-01-01T00:00:00Z",
        {"published_after": "2024-01-01T00:00:00Z"},
        id="timestamp-utc",
    ),
    pytest.param(
        f"{BOOKS}?published_after=2024-01-01T00:00:00.5%2B02:00",
        {"published_after": "2023-12-31T22:00:00.500Z"},
        id="timestamp-offset-and-fraction",
    ),
    pytest.param(f"{BOOKS}?title_contains=", {"title_contains": ""}, id="optional-empty-present"),
    pytest.param(
        f"{BOOKS}?title_contains=a+b%20c%2Bd",
        {"title_contains": "a b c+d"},
        id="plus-is-a-space-in-query",
    ),
    pytest.param(f"{BOOKS}?isbn10=0441013597", {"isbn_10": "0441013597"}, id="oneof-json-name"),
    pytest.param(
        f"{BOOKS}?author=authors/herbert", {"author": "authors/herbert"}, id="unescaped-slash"
    ),
    pytest.param(
        f"{BOOKS}?sortOrder=SORT_ORDER_DESCENDING",
        {"sort_order": "SORT_ORDER_DESCENDING"},
        id="enum-of-another-package",
    ),
    pytest.param(f"{BOOKS}?format=FORMAT_EBOOK", {"format": "FORMAT_EBOOK"}, id="nested-enum"),
]


@pytest.mark.parametrize(("target", "request_dict"), QUERY)
def test_query_parameters_fill_the_request(
    example: Served, target: str, request_dict: dict[str, Any]
) -> None:
    reply = call(example.gateway, "GET", target)
    [(handler, got)] = example.requests()
    bound = {"list_shelves": {}, "list_books": {"parent": "shelves/fiction"}}[handler]
    assert got == {**bound, **request_dict}
    assert reply.status == 200
    assert reply.header("content-type") == "application/json"


QUERY_OTHER_METHODS = [
    pytest.param(
        "GET",
        f"/v1/{DUNE}?read_mask=title,publishTime",
        ("get_book", {"name": DUNE, "read_mask": "title,publishTime"}),
        id="field-mask-json-names",
    ),
    pytest.param(
        "GET",
        f"/v1/{DUNE}?readMask=title,publish_time",
        ("get_book", {"name": DUNE, "read_mask": "title,publishTime"}),
        id="field-mask-proto-names",
    ),
    pytest.param(
        "DELETE",
        f"/v1/{DUNE}?etag=%2B%2F8%3D",
        ("delete_book", {"name": DUNE, "etag": "+/8="}),
        id="bytes-standard-padded",
    ),
    pytest.param(
        "DELETE",
        f"/v1/{DUNE}?etag=%2B%2F8",
        ("delete_book", {"name": DUNE, "etag": "+/8="}),
        id="bytes-standard-unpadded",
    ),
    pytest.param(
        "DELETE",
        f"/v1/{DUNE}?etag=-_8%3D",
        ("delete_book", {"name": DUNE, "etag": "+/8="}),
        id="bytes-url-safe-padded",
    ),
    pytest.param(
        "DELETE",
        f"/v1/{DUNE}?etag=-_8",
        ("delete_book", {"name": DUNE, "etag": "+/8="}),
        id="bytes-url-safe-unpadded",
    ),
    pytest.param(
        "DELETE",
        "/v1/shelves/fiction?force=true",
        ("delete_shelf", {"shelf": "fiction", "force": True}),
        id="bool",
    ),
    pytest.param(
        "GET",
        "/v1/shelves/fiction:watch?since=2024-01-01T00:00:00Z&maxEvents=1",
        (
            "watch_shelf",
            {"name": "shelves/fiction", "since": "2024-01-01T00:00:00Z", "max_events": 1},
        ),
        id="streaming-method",
    ),
]


@pytest.mark.parametrize(("method", "target", "received"), QUERY_OTHER_METHODS)
def test_query_parameters_of_other_methods(
    example: Served, method: str, target: str, received: tuple[str, dict[str, Any]]
) -> None:
    reply = call(example.gateway, method, target)
    assert example.requests() == [received]
    assert_answered(reply, 200)


QUERY_ERRORS = [
    pytest.param("GET", "/v1/shelves?bogus=1", 'unknown query parameter "bogus"', id="unknown"),
    pytest.param(
        "GET", "/v1/shelves?page.bogus=1", 'has no field "bogus"', id="unknown-nested-field"
    ),
    pytest.param(
        "GET",
        "/v1/shelves?Page.page_size=3",
        'unknown query parameter "Page.page_size"',
        id="names-are-case-sensitive",
    ),
    pytest.param(
        "GET",
        "/v1/shelves?theme=GENRE_NOPE",
        '"GENRE_NOPE" is not a value of enum bookstore.v1.Genre',
        id="unknown-enum-name",
    ),
    pytest.param("GET", "/v1/shelves?theme=POETRY", '"POETRY"', id="enum-name-without-prefix"),
    pytest.param(
        "GET",
        "/v1/shelves?page.page_size=1&page.page_size=2",
        'field "page.page_size" given twice',
        id="singular-given-twice",
    ),
    pytest.param(
        "GET",
        "/v1/shelves?page.page_size=3&page.pageSize=4",
        "given twice",
        id="singular-by-proto-and-json-name",
    ),
    pytest.param(
        "GET", "/v1/shelves?theme=GENRE_POETRY&theme=1", "given twice", id="enum-given-twice"
    ),
    pytest.param(
        "GET",
        f"{BOOKS}?author=x&isbn_10=y",
        '"author" and "isbn_10" are members of oneof "lookup"',
        id="two-oneof-members",
    ),
    pytest.param("GET", f"{BOOKS}?genres.x=1", '"genres"', id="path-through-repeated"),
    pytest.param(
        "GET",
        "/v1/shelves?page.page_size.x=1",
        '"page_size" is not a message field',
        id="path-through-scalar",
    ),
    pytest.param("GET", f"{BOOKS}?labels=x", "write labels[KEY]=VALUE", id="map-without-key"),
    pytest.param("GET", "/v1/shelves?page=1", "is not one value", id="message-as-value"),
    pytest.param(
        "GET",
        f"{BOOKS}?published_after.seconds=5",
        "give it as one value",
        id="path-into-well-known-type",
    ),
    pytest.param(
        "GET", f"{BOOKS}?parent=shelves/x", '"parent" is in the URL path', id="bound-by-path"
    ),
    pytest.param(
        "GET",
        f"{BOOKS}?min_page_count=abc",
        'invalid int32 value "abc"',
        id="wrapper-not-a-number",
    ),
    pytest.param(
        "GET",
        "/v1/shelves?page.page_size=99999999999",
        "out of range",
        id="int32-out-of-range",
    ),
    pytest.param("GET", f"{BOOKS}?min_rating=1e400", "out of range", id="double-out-of-range"),
    pytest.param(
        "DELETE", "/v1/shelves/fiction?force=yes", 'invalid bool value "yes"', id="bad-bool"
    ),
    pytest.param(
        "GET",
        "/v1/shelves/fiction:watch?since=yesterday",
        'invalid Timestamp "yesterday"',
        id="bad-timestamp",
    ),
    pytest.param("DELETE", f"/v1/{DUNE}?etag=!!", "expected base64", id="bad-bytes"),
    pytest.param("GET", f"{BOOKS}?title_contains=%FF", "not valid UTF-8", id="value-not-utf8"),
    pytest.param(
        "GET", "/v1/shelves?location.floor=%zz", "malformed percent escape", id="bad-escape"
    ),
]


@pytest.mark.parametrize(("method", "target", "fragment"), QUERY_ERRORS)
def test_bad_query_parameters_are_400(
    example: Served, method: str, target: str, fragment: str
) -> None:
    reply = call(example.gateway, method, target)
    assert_status_body(reply, 400, 3, fragment)
    assert example.requests() == []


QUERY_ON_BODY_ROUTES = [
    pytest.param(
        "/v1/shelves?shelf.display_name=x",
        'field "shelf" comes from the body',
        id="field-bound-by-body",
    ),
    pytest.param(
        f"/v1/{DUNE}:checkout?memberId=m1",
        "every field not in the URL path comes from the body",
        id="any-field-with-body-star",
    ),
]


@pytest.mark.parametrize(("target", "fragment"), QUERY_ON_BODY_ROUTES)
def test_query_parameters_cannot_set_body_fields(
    example: Served, target: str, fragment: str
) -> None:
    reply = call(example.gateway, "POST", target, body=b"{}", headers=JSON)
    assert_status_body(reply, 400, 3, fragment)
    assert example.requests() == []


IGNORED_QUERY = [
    pytest.param(
        "/v1/shelves?bogus=1&theme=GENRE_POETRY",
        ("list_shelves", {"theme": "GENRE_POETRY"}),
        id="unknown-dropped",
    ),
    pytest.param(
        f"{BOOKS}?parent=shelves/x",
        ("list_books", {"parent": "shelves/fiction"}),
        id="path-bound-dropped",
    ),
]


@pytest.mark.parametrize(("target", "received"), IGNORED_QUERY)
def test_ignore_unknown_query_option_drops_refused_parameters(
    bookstore_pb: ModuleType,
    backend: Backend,
    target: str,
    received: tuple[str, dict[str, Any]],
) -> None:
    served = serve(
        bookstore_pb, backend=backend, transcode=TranscodeOptions(ignore_unknown_query=True)
    )
    reply = call(served.gateway, "GET", target)
    assert served.requests() == [received]
    assert_answered(reply, 200)


def test_ignore_unknown_query_option_still_refuses_bad_values(
    bookstore_pb: ModuleType,
    backend: Backend,
) -> None:
    served = serve(
        bookstore_pb, backend=backend, transcode=TranscodeOptions(ignore_unknown_query=True)
    )
    reply = call(served.gateway, "GET", "/v1/shelves?theme=GENRE_NOPE")
    assert_status_body(reply, 400, 3, '"GENRE_NOPE" is not a value of enum')
