"""The gateway end to end through ASGI: responses (docs/http-transcoding.md §4), errors (§5).

Every row is one HTTP request to a `Gateway` over the example Bookstore (see
test_gateway_conformance.py for routing and request building, tests/support/gateway_fixtures.py for
the service). Bodies are compared as parsed JSON, exactly; `json_format` is the oracle where one row
stands for many.
"""

from __future__ import annotations

import json
import logging
from types import ModuleType
from typing import Any

import pytest

from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from tests.support.gateway_fixtures import (
    DUNE,
    IN_PROCESS,
    JSON,
    SECRET,
    UUID,
    Backend,
    Served,
    assert_internal,
    assert_status_body,
    call,
    in_process_only,
    serve,
)

SSE = [("accept", "text/event-stream")]

# The seeded book (examples/bookstore.py) as the gateway writes it by default: lowerCamelCase
# json_name keys (`isbn` is explicit), 64-bit integers as strings, enums by name, every field
# without presence emitted; the fields with presence that are unset (wrappers, `optional`,
# oneof members, messages) left out.
DUNE_JSON = {
    "name": DUNE,
    "title": "Dune",
    "authors": ["authors/herbert"],
    "genres": ["GENRE_SCIENCE_FICTION"],
    "format": "FORMAT_UNSPECIFIED",
    "isbn": "9780441013593",
    "isbn10": "",
    "publishTime": "2026-01-01T00:00:00Z",
    "labels": {"lang": "en"},
    "chapterTitles": {"1": "Book One"},
    "regionalPrices": {},
    "copiesSold": "20000000",
    "catalogNumber": "0",
    "averageRating": 0,
    "weightKg": 0,
    "coverThumbnail": "",
    "reviews": [],
    "etag": "",
}
DUNE_SET = {
    "name": DUNE,
    "title": "Dune",
    "authors": ["authors/herbert"],
    "genres": ["GENRE_SCIENCE_FICTION"],
    "isbn": "9780441013593",
    "publishTime": "2026-01-01T00:00:00Z",
    "labels": {"lang": "en"},
    "chapterTitles": {"1": "Book One"},
    "copiesSold": "20000000",
}
DUNE_PROTO_NAMES = {
    "name": DUNE,
    "title": "Dune",
    "authors": ["authors/herbert"],
    "genres": ["GENRE_SCIENCE_FICTION"],
    "format": "FORMAT_UNSPECIFIED",
    "isbn_13": "9780441013593",
    "isbn_10": "",
    "publish_time": "2026-01-01T00:00:00Z",
    "labels": {"lang": "en"},
    "chapter_titles": {"1": "Book One"},
    "regional_prices": {},
    "copies_sold": "20000000",
    "catalog_number": "0",
    "average_rating": 0,
    "weight_kg": 0,
    "cover_thumbnail": "",
    "reviews": [],
    "etag": "",
}
FICTION_JSON = {
    "name": "shelves/fiction",
    "displayName": "Fiction",
    "theme": "GENRE_FICTION",
    "createTime": "2026-01-01T00:00:00Z",
    "bookCount": "0",
    "labels": {},
}
HERBERT = "/v1/authors/herbert"

DEFAULT = JsonOptions()
OMIT = JsonOptions(emit_unpopulated=False)
PROTO_NAMES = JsonOptions(use_proto_names=True)
ENUM_NUMBERS = JsonOptions(enums_as_ints=True)
ALL_OPTIONS = JsonOptions(emit_unpopulated=False, use_proto_names=True, enums_as_ints=True)


# --- §4 Writing the response ---

RESPONSES = [
    pytest.param(DEFAULT, f"/v1/{DUNE}", DUNE_JSON, id="book-default"),
    pytest.param(OMIT, f"/v1/{DUNE}", DUNE_SET, id="book-omit-unpopulated"),
    pytest.param(PROTO_NAMES, f"/v1/{DUNE}", DUNE_PROTO_NAMES, id="book-proto-names"),
    pytest.param(
        ENUM_NUMBERS,
        f"/v1/{DUNE}",
        {**DUNE_JSON, "genres": [4], "format": 0},
        id="book-enums-as-numbers",
    ),
    pytest.param(
        ALL_OPTIONS,
        f"/v1/{DUNE}",
        {
            "name": DUNE,
            "title": "Dune",
            "authors": ["authors/herbert"],
            "genres": [4],
            "isbn_13": "9780441013593",
            "publish_time": "2026-01-01T00:00:00Z",
            "labels": {"lang": "en"},
            "chapter_titles": {"1": "Book One"},
            "copies_sold": "20000000",
        },
        id="book-all-options",
    ),
    pytest.param(DEFAULT, "/v1/shelves", {"shelves": [FICTION_JSON]}, id="list-without-page-info"),
    pytest.param(
        DEFAULT,
        f"/v1/{DUNE}/chapters/1",
        {"book": DUNE, "number": 1, "title": "Book One"},
        id="int32-as-number",
    ),
    pytest.param(
        DEFAULT,
        f"/v1/{DUNE}/files/a/b.txt",
        {
            "name": f"{DUNE}/files/a/b.txt",
            "contentType": "text/plain",
            "content": "Y2hhcHRlciAx",
            "sizeBytes": "9",
            "xxhash64": "0",
        },
        id="bytes-base64-int64-uint64-strings",
    ),
    pytest.param(
        DEFAULT,
        HERBERT,
        {"name": "authors/herbert", "displayName": "Frank Herbert", "penNames": []},
        id="response-body-message",
    ),
    pytest.param(
        PROTO_NAMES,
        HERBERT,
        {"name": "authors/herbert", "display_name": "Frank Herbert", "pen_names": []},
        id="response-body-proto-names",
    ),
    pytest.param(
        OMIT,
        HERBERT,
        {"name": "authors/herbert", "displayName": "Frank Herbert"},
        id="response-body-omit",
    ),
    pytest.param(DEFAULT, "/v1/genres", ["GENRE_SCIENCE_FICTION"], id="response-body-enum-list"),
    pytest.param(ENUM_NUMBERS, "/v1/genres", [4], id="response-body-enum-numbers"),
]


@pytest.mark.parametrize(("options", "target", "expected"), RESPONSES)
def test_responses_are_proto3_json(
    bookstore_pb: ModuleType,
    backend: Backend,
    options: JsonOptions,
    target: str,
    expected: Any,
) -> None:
    served = serve(bookstore_pb, backend=backend, json_options=options)
    reply = call(served.gateway, "GET", target)
    assert reply.status == 200
    assert reply.header("content-type") == "application/json"
    assert reply.json() == expected


EVERY_KIND_OF_BOOK = (
    b'{"title":"New","isbn":"9780000000002","isbn10":"0000000002","copiesSold":"-12",'
    b'"catalogNumber":"18446744073709551615","publishTime":"2020-01-01T00:00:00.5Z",'
    b'"audioLength":"3.5s","edition":2,"subtitle":"","pageCount":0,'
    b'"price":{"currencyCode":"EUR","units":"-3","nanos":-500000000},'
    b'"chapterTitles":{"1":"One"},"genres":["GENRE_FICTION",4],"coverThumbnail":"-_8=",'
    b'"averageRating":"NaN","weightKg":"-Infinity","labels":{"a":"b"},'
    b'"regionalPrices":{"EU":{"units":"9"}},"reviews":[{"reviewer":"r","stars":5}]}'
)
EVERY_KIND_OF_BOOK_JSON = {
    "name": "shelves/fiction/books/new",
    "title": "New",
    "subtitle": "",
    "authors": [],
    "genres": ["GENRE_FICTION", "GENRE_SCIENCE_FICTION"],
    "format": "FORMAT_UNSPECIFIED",
    "isbn": "9780000000002",
    "isbn10": "0000000002",
    "pageCount": 0,
    "edition": 2,
    "publishTime": "2020-01-01T00:00:00.500Z",
    "audioLength": "3.500s",
    "price": {"currencyCode": "EUR", "units": "-3", "nanos": -500000000},
    "labels": {"a": "b"},
    "chapterTitles": {"1": "One"},
    "regionalPrices": {"EU": {"currencyCode": "", "units": "9", "nanos": 0}},
    "copiesSold": "-12",
    "catalogNumber": "18446744073709551615",
    "averageRating": "NaN",
    "weightKg": "-Infinity",
    "coverThumbnail": "+/8=",
    "reviews": [{"reviewer": "r", "stars": 5, "text": ""}],
    "etag": "",
}

WRITTEN = [
    pytest.param(
        "POST",
        "/v1/shelves/fiction/books?book_id=new",
        EVERY_KIND_OF_BOOK,
        EVERY_KIND_OF_BOOK_JSON,
        id="every-kind-of-field-and-well-known-type",
    ),
    pytest.param(
        "POST",
        "/v1/shelves/fiction/books?book_id=gift",
        b'{"donor":"Ann","subtitle":"A gift"}',
        {
            "name": "shelves/fiction/books/gift",
            "title": "",
            "subtitle": "A gift",
            "authors": [],
            "genres": [],
            "format": "FORMAT_UNSPECIFIED",
            "isbn": "",
            "isbn10": "",
            "donor": "Ann",
            "labels": {},
            "chapterTitles": {},
            "regionalPrices": {},
            "copiesSold": "0",
            "catalogNumber": "0",
            "averageRating": 0,
            "weightKg": 0,
            "coverThumbnail": "",
            "reviews": [],
            "etag": "",
        },
        id="oneof-string-member-and-wrapper",
    ),
    pytest.param(
        "POST",
        f"/v1/{DUNE}:checkout",
        b'{"memberId":"m1"}',
        {"name": f"{DUNE}/loans/1", "book": DUNE, "borrower": "m1"},
        id="unset-timestamps-left-out",
    ),
    pytest.param("DELETE", f"/v1/{DUNE}", b"", {}, id="empty"),
    pytest.param("HEAD", "/v1/shelves/fiction", b"", {}, id="empty-for-HEAD"),
]


@pytest.mark.parametrize(("method", "target", "body", "expected"), WRITTEN)
def test_written_messages_are_proto3_json(
    example: Served, method: str, target: str, body: bytes, expected: Any
) -> None:
    reply = call(example.gateway, method, target, headers=JSON, body=body)
    assert reply.status == 200, reply.body
    assert reply.header("content-type") == "application/json"
    assert reply.json() == expected


ORACLE_TARGETS = [
    pytest.param("GET", f"/v1/{DUNE}", b"", id="book"),
    pytest.param("GET", "/v1/shelves", b"", id="shelves"),
    pytest.param("GET", f"/v1/{DUNE}/files/x", b"", id="file"),
    pytest.param("GET", HERBERT, b"", id="response-body"),
    pytest.param("GET", "/v1/genres", b"", id="response-body-repeated-enum"),
    pytest.param("POST", "/v1/shelves/fiction/books?book_id=new", EVERY_KIND_OF_BOOK, id="created"),
    pytest.param("POST", "/v1/books:import", b'{"name":"a"}\n{"name":"b"}', id="client-stream"),
]
OPTIONS = [
    pytest.param(DEFAULT, id="default"),
    pytest.param(OMIT, id="omit"),
    pytest.param(PROTO_NAMES, id="proto-names"),
    pytest.param(ENUM_NUMBERS, id="enum-numbers"),
]
RESPONSE_BODY = {"get_author": "author", "list_genres": "genres"}


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize(("method", "target", "body"), ORACLE_TARGETS)
def test_responses_match_json_format(
    bookstore_pb: ModuleType,
    backend: Backend,
    options: JsonOptions,
    method: str,
    target: str,
    body: bytes,
) -> None:
    """The body equals google.protobuf.json_format's rendering of what the handler returned."""
    served = serve(bookstore_pb, backend=backend, json_options=options)
    reply = call(served.gateway, method, target, headers=JSON, body=body)
    [sent] = served.service.sent
    expected = served.as_dict(
        sent,
        always_print_fields_with_no_presence=options.emit_unpopulated,
        preserving_proto_field_name=options.use_proto_names,
        use_integers_for_enums=options.enums_as_ints,
    )
    if sent.handler in RESPONSE_BODY:
        expected = expected.get(RESPONSE_BODY[sent.handler])  # one word: proto = JSON name
    assert reply.status == 200
    assert reply.json() == expected


UNARY_HEADERS = [
    pytest.param("GET", "/v1/shelves/fiction", 200, [], id="200"),
    pytest.param("GET", "/nothing", 404, [], id="404"),
    pytest.param("DELETE", "/v1/shelves", 405, [b"allow"], id="405"),
    pytest.param("GET", "/v1/shelves/fail-16", 401, [b"www-authenticate"], id="401"),
    pytest.param("GET", "/v1/shelves/crash", 500, [], id="500"),
]


@pytest.mark.parametrize(("method", "target", "status", "extra"), UNARY_HEADERS)
def test_a_unary_answer_is_one_start_and_one_body_message(
    example: Served, method: str, target: str, status: int, extra: list[bytes]
) -> None:
    reply = call(example.gateway, method, target)
    start, body = reply.messages
    assert start["type"] == "http.response.start"
    assert start["status"] == status
    names = sorted(name for name, _ in start["headers"])
    assert names == sorted([b"content-length", b"content-type", b"x-request-id", *extra])
    assert body == {"type": "http.response.body", "body": reply.body}


# --- §4 Server streaming ---


def ndjson_lines(reply: Any) -> list[Any]:
    assert reply.status == 200
    assert reply.header("content-type") == "application/x-ndjson"
    assert reply.header("content-length") is None
    return reply.lines()


def sse_events(reply: Any) -> list[Any]:
    assert reply.status == 200
    assert reply.header("content-type") == "text/event-stream"
    assert reply.header("content-length") is None
    return reply.events()


STREAM_OK = [{"result": {"shelf": "shelves/fiction", "bookAdded": DUNE_JSON}}]
FLAKY = [
    {"result": {"shelf": "shelves/flaky", "bookRemoved": "shelves/flaky/books/first"}},
    {"error": {"code": 14, "message": "the shelf sensor went offline", "details": []}},
]
CRASHY = [
    {"result": {"shelf": "shelves/crashy", "bookRemoved": "shelves/crashy/books/first"}},
    {"error": {"code": 13, "message": "internal error", "details": []}},
]

STREAMS = [
    pytest.param("/v1/shelves/fiction:watch", [], ndjson_lines, STREAM_OK, id="ndjson"),
    pytest.param(
        "/v1/shelves/fiction:watch",
        [("accept", "application/json")],
        ndjson_lines,
        STREAM_OK,
        id="ndjson-for-json-accept",
    ),
    pytest.param("/v1/shelves/fiction:watch", SSE, sse_events, STREAM_OK, id="sse"),
    pytest.param(
        "/v1/shelves/fiction:watch",
        [("accept", "application/json, text/event-stream;q=0.5")],
        sse_events,
        STREAM_OK,
        id="sse-among-other-types",
    ),
    pytest.param("/v1/shelves/flaky:watch", [], ndjson_lines, FLAKY, id="ndjson-error-after-first"),
    pytest.param("/v1/shelves/flaky:watch", SSE, sse_events, FLAKY, id="sse-error-after-first"),
    pytest.param(
        "/v1/shelves/crashy:watch", [], ndjson_lines, CRASHY, id="ndjson-exception-after-first"
    ),
    pytest.param(
        "/v1/shelves/crashy:watch", SSE, sse_events, CRASHY, id="sse-exception-after-first"
    ),
]


@pytest.mark.parametrize(("target", "headers", "decode", "expected"), STREAMS)
def test_server_streams_are_ndjson_or_sse(
    backend: Backend,
    example: Served,
    target: str,
    headers: list[tuple[str, str]],
    decode: Any,
    expected: Any,
) -> None:
    reply = call(example.gateway, "GET", target, headers=headers)
    got = decode(reply)
    if expected is CRASHY:  # the failure as the backend reports it (see INTERNAL_FAILURES)
        assert_internal(backend, got.pop()["error"])
        expected = expected[:-1]
    assert got == expected
    if backend.name == IN_PROCESS.name:
        assert SECRET.encode() not in reply.body
    assert UUID.fullmatch(reply.header("x-request-id") or "")


@pytest.mark.parametrize("headers", [pytest.param([], id="ndjson"), pytest.param(SSE, id="sse")])
def test_each_stream_message_is_sent_as_it_comes(
    example: Served, headers: list[tuple[str, str]]
) -> None:
    create = b'{"title":"Second"}'
    call(example.gateway, "POST", "/v1/shelves/fiction/books?book_id=zz", headers=JSON, body=create)
    reply = call(example.gateway, "GET", "/v1/shelves/fiction:watch", headers=headers)
    start, *chunks, end = reply.messages
    assert start["type"] == "http.response.start"
    assert [chunk["more_body"] for chunk in chunks] == [True, True]
    titles = [_one_event(chunk["body"])["result"]["bookAdded"]["title"] for chunk in chunks]
    assert titles == ["Dune", "Second"]
    assert end == {"type": "http.response.body", "body": b""}


def _one_event(chunk: bytes) -> Any:
    """One NDJSON line or one SSE event, ending its chunk."""
    text = chunk.decode()
    if text.startswith("data: "):
        assert text.endswith("\n\n") and text.count("\n") == 2, text
        return json.loads(text.removeprefix("data: "))
    assert text.endswith("\n") and text.count("\n") == 1, text
    return json.loads(text)


def test_an_empty_stream_is_an_empty_200(example: Served) -> None:
    call(example.gateway, "POST", "/v1/shelves?shelf_id=empty", headers=JSON, body=b"{}")
    reply = call(example.gateway, "GET", "/v1/shelves/empty:watch")
    assert reply.status == 200
    assert reply.header("content-type") == "application/x-ndjson"
    assert reply.body == b""


@pytest.mark.parametrize("headers", [pytest.param([], id="ndjson"), pytest.param(SSE, id="sse")])
def test_a_stream_error_before_the_first_message_is_a_plain_error(
    example: Served, headers: list[tuple[str, str]]
) -> None:
    reply = call(example.gateway, "GET", "/v1/shelves/nope:watch", headers=headers)
    assert_status_body(reply, 404, 5, "shelves/nope not found")


def test_stream_options_apply_to_each_message(bookstore_pb: ModuleType, backend: Backend) -> None:
    served = serve(bookstore_pb, backend=backend, json_options=ALL_OPTIONS)
    reply = call(served.gateway, "GET", "/v1/shelves/fiction:watch")
    [line] = ndjson_lines(reply)
    assert line["result"]["book_added"]["genres"] == [4]
    assert "average_rating" not in line["result"]["book_added"]


# --- §5 Errors ---

CODES = [
    pytest.param(0, 200, id="0-OK"),
    pytest.param(1, 499, id="1-CANCELLED"),
    pytest.param(2, 500, id="2-UNKNOWN"),
    pytest.param(3, 400, id="3-INVALID_ARGUMENT"),
    pytest.param(4, 504, id="4-DEADLINE_EXCEEDED"),
    pytest.param(5, 404, id="5-NOT_FOUND"),
    pytest.param(6, 409, id="6-ALREADY_EXISTS"),
    pytest.param(7, 403, id="7-PERMISSION_DENIED"),
    pytest.param(8, 429, id="8-RESOURCE_EXHAUSTED"),
    pytest.param(9, 400, id="9-FAILED_PRECONDITION"),
    pytest.param(10, 409, id="10-ABORTED"),
    pytest.param(11, 400, id="11-OUT_OF_RANGE"),
    pytest.param(12, 501, id="12-UNIMPLEMENTED"),
    pytest.param(13, 500, id="13-INTERNAL"),
    pytest.param(14, 503, id="14-UNAVAILABLE"),
    pytest.param(15, 500, id="15-DATA_LOSS"),
    pytest.param(16, 401, id="16-UNAUTHENTICATED"),
    pytest.param(99, 500, id="99-other"),
]


# Codes a gRPC server cannot send (in-process only): a unary call cannot end OK without its
# response (grpclib's server raises ProtocolError and leaves the stream open until the deadline;
# grpc.aio likewise), and a status outside google.rpc.Code is refused by both servers' APIs.
UNSENDABLE = {0, 99}


@pytest.mark.parametrize(("code", "http_status"), CODES)
def test_grpc_codes_map_to_http_statuses(
    backend: Backend, example: Served, code: int, http_status: int
) -> None:
    if code in UNSENDABLE:
        in_process_only(backend, f"a gRPC server cannot end a unary call with code {code}")
    reply = call(example.gateway, "GET", f"/v1/shelves/fail-{code}")
    assert_status_body(reply, http_status, code, f"injected failure with code {code}")
    assert reply.json()["message"] == f"injected failure with code {code}"
    if code == 16:
        assert reply.header("www-authenticate")
    else:
        assert reply.header("www-authenticate") is None


# In process, the gateway catches the handler's failure: 500 INTERNAL "internal error", the
# exception logged. In proxy mode the upstream server catches it and ends the call UNKNOWN
# (HTTP 500) with a message of its own, which the gateway forwards: grpclib says "Internal Server
# Error"; grpc.aio says "Unexpected <class 'RuntimeError'>: <the exception's text>", internals
# included. The gateway itself did nothing wrong then, and logs nothing.
INTERNAL_FAILURES = [
    pytest.param("/v1/shelves/crash", id="handler-raises"),
    pytest.param("/v1/shelves/void", id="handler-returns-no-message"),
]


@pytest.mark.parametrize("target", INTERNAL_FAILURES)
def test_internal_failures_are_500_without_internals(
    backend: Backend, example: Served, target: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="protoc_gen_restmon.gateway"):
        reply = call(example.gateway, "GET", target)
    assert_status_body(reply, 500, backend.internal[0])
    assert_internal(backend, reply.json())
    logged = [r for r in caplog.records if r.name == "protoc_gen_restmon.gateway"]
    if backend.name != IN_PROCESS.name:
        assert logged == []
        return
    for leak in (SECRET, "Traceback", "Error", ".py"):
        assert leak.encode() not in reply.body
    assert [record.exc_info is not None for record in logged] == [True]


# --- Request ids (§6, echoed in every answer) ---

REQUEST_IDS = [
    pytest.param("GET", "/v1/shelves/fiction", "abc-123", id="ok"),
    pytest.param("GET", "/nothing", "r-404", id="404"),
    pytest.param("DELETE", "/v1/shelves", "r-405", id="405"),
    pytest.param("GET", "/v1/shelves?bogus=1", "r-400", id="400"),
    pytest.param("GET", "/v1/shelves/crash", "r-500", id="500"),
    pytest.param("GET", "/v1/shelves/fiction:watch", "r-stream", id="stream"),
    pytest.param("GET", "/v1/shelves/fiction", "x" * 128, id="128-chars"),
]


@pytest.mark.parametrize(("method", "target", "request_id"), REQUEST_IDS)
def test_a_given_request_id_is_echoed(
    example: Served, method: str, target: str, request_id: str
) -> None:
    reply = call(example.gateway, method, target, headers=[("x-request-id", request_id)])
    assert reply.header("x-request-id") == request_id


REPLACED_IDS = [
    pytest.param([], id="absent"),
    pytest.param([("x-request-id", "")], id="empty"),
    pytest.param([("x-request-id", "x" * 129)], id="too-long"),
    pytest.param([("x-request-id", "a\x01b")], id="control-character"),
]


@pytest.mark.parametrize("headers", REPLACED_IDS)
def test_a_missing_or_unusable_request_id_is_generated(
    example: Served, headers: list[tuple[str, str]]
) -> None:
    first = call(example.gateway, "GET", "/v1/shelves/fiction", headers=headers)
    second = call(example.gateway, "GET", "/nothing", headers=headers)
    ids = [first.header("x-request-id"), second.header("x-request-id")]
    assert all(UUID.fullmatch(value or "") for value in ids), ids
    assert ids[0] != ids[1]
