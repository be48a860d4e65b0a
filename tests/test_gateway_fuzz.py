"""Hypothesis against the gateway: no request, however broken, gets a 5xx
(docs/http-transcoding.md §5).

Random paths (percent junk, `..`, unicode, very long), query strings, headers (content types,
Accept, request ids) and bodies (bytes, JSON, deeply nested JSON, NDJSON) go to a gateway over
the plain example service (examples/bookstore.py, which never fails on purpose). Properties:

- every answer is 2xx or 4xx, and carries an `X-Request-Id`;
- every 4xx is a google.rpc.Status: `{"code": int, "message": str, "details": list}` in JSON;
- every 2xx body is JSON, NDJSON or Server-Sent Events of JSON, as its content type says.
"""

from __future__ import annotations

import itertools
import json
import os
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.gateway.app import Gateway
from tests.support.gateway_fixtures import DUNE, Reply, assert_status_shape, call

FUZZ = settings(
    max_examples=int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "600")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def gateway(bookstore_pb: ModuleType) -> Gateway:
    return Gateway(services=[make_service(bookstore_pb)])


def assert_well_answered(reply: Reply) -> None:
    assert 200 <= reply.status < 500, (reply.status, reply.body)
    assert reply.header("x-request-id")
    content_type = reply.header("content-type")
    if reply.status >= 400:
        assert content_type == "application/json", reply.headers
        assert_status_shape(reply.json())
    elif content_type == "application/json":
        reply.json()
    elif content_type == "application/x-ndjson":
        if reply.body:
            reply.lines()
    else:
        assert content_type == "text/event-stream", reply.headers
        if reply.body:
            reply.events()


# --- Strategies ---

# Pieces of the example's routes, and pieces that break paths.
SEGMENTS = [
    *("v1", "shelves", "fiction", "books", "dune", "files", "chapters", "1", "-1", "authors"),
    *("herbert", "genres", "stats", "books:import", "fiction:watch", "dune:checkout", "a:b"),
    *("..", ".", "", ":", "::watch", "%", "%2", "%2F", "%2f", "%zz", "%FF", "%C3%A9", "%C3"),
    *("%00", "%252F", "+", "é", "😀", "\u202e", "x" * 300),
]
ESCAPE_PIECES = ["%", "%2", "%G", "%41", "%2F", "%3A", "%FF", "%C3", "%A9", "a", "/", ":", "+"]
ROUTES = [
    ("GET", "/v1/shelves"),
    ("POST", "/v1/shelves"),
    ("GET", "/v1/shelves/fiction"),
    ("HEAD", "/v1/shelves/fiction"),
    ("PUT", "/v1/shelves/fiction"),
    ("DELETE", "/v1/shelves/nope"),
    ("GET", "/v1/shelves/fiction:watch"),
    ("GET", "/v1/shelves/fiction/books"),
    ("POST", "/v1/shelves/fiction/books"),
    ("GET", f"/v1/{DUNE}"),
    ("PATCH", f"/v1/{DUNE}"),
    ("DELETE", "/v1/shelves/fiction/books/nope"),
    ("POST", f"/v1/{DUNE}:checkout"),
    ("GET", f"/v1/{DUNE}/files/a/b"),
    ("GET", f"/v1/{DUNE}/chapters/1"),
    ("GET", "/v1/authors/herbert"),
    ("GET", "/v1/genres"),
    ("POST", "/v1/books:import"),
]
QUERY_KEYS = [
    *("page.page_size", "page.pageSize", "page.page_token", "page", "page.page_size.x", "theme"),
    *("genres", "genres.x", "labels[a]", "labels[", "labels]", "labels", "min_page_count"),
    *("minPageCount", "min_rating", "published_after", "published_after.seconds"),
    *("title_contains", "author", "isbn_10", "isbn10", "read_mask", "etag", "force", "since"),
    *("max_events", "shelf_id", "validate_only", "update_mask", "location.floor", "shelf", ""),
    *("book_id", "book.title", "parent", "name", "%zz", "%FF", "a%5Bb%5D"),
]
QUERY_VALUES = [
    *("", "1", "-1", "0", "2147483648", "99999999999999999999", "NaN", "-Infinity", "1e400"),
    *("true", "yes", "GENRE_POETRY", "GENRE_NOPE", "6", "99", "2024-01-01T00:00:00Z", "later"),
    *("a,b", "title,publishTime", "%zz", "%FF", "+", "%2B", "-_8", "%2B%2F8%3D", "!!", "1.5s"),
]
FIELD_NAMES = [
    *("displayName", "display_name", "theme", "location", "floor", "labels", "bookCount"),
    *("title", "isbn", "isbn_13", "isbn10", "price", "donor", "units", "nanos", "genres"),
    *("publishTime", "audioLength", "chapterTitles", "edition", "subtitle", "reviews"),
    *("memberId", "libraryCard", "loanPeriod", "deposit", "name", "updateMask", "@type"),
]
CONTENT_TYPES = [
    *("application/json", "application/json; charset=utf-8", "application/json; charset=x"),
    *("APPLICATION/JSON", "application/merge-patch+json", "application/x-ndjson", "text/plain"),
    *("multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "", ";", "*/*"),
    *('application/json; charset="utf-8"', "application/json;;;", "application/jsonl"),
]
ACCEPTS = ["text/event-stream", "*/*", "application/json", "text/event-stream;q=0", ""]

latin1 = st.text(st.characters(max_codepoint=255, exclude_categories=("Cs",)), max_size=40)
escape_junk = st.lists(st.sampled_from(ESCAPE_PIECES), max_size=10).map("".join)
segment = st.one_of(st.sampled_from(SEGMENTS), st.text(max_size=12), escape_junk)
random_paths = st.one_of(
    st.lists(segment, max_size=12).map(lambda parts: "/" + "/".join(parts)),
    st.text(max_size=120).map(lambda text: "/" + text.replace("?", "")),
    st.integers(1, 3000).map(lambda n: "/v1/shelves/fiction/books/dune/files/" + "a/" * n),
    st.integers(1, 20000).map(lambda n: "/v1/shelves/" + "x" * n),
    st.integers(1, 2000).map(lambda n: "/v1/shelves/" + "%2F" * n),
)
methods = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
    st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True),
)
query_values = st.one_of(st.sampled_from(QUERY_VALUES), st.text(max_size=20), escape_junk)
query_keys = st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=12))
queries = st.one_of(
    st.lists(st.tuples(query_keys, query_values), max_size=8).map(
        lambda pairs: "&".join(f"{key}={value}" for key, value in pairs)
    ),
    st.text(max_size=60).map(lambda text: text.replace("#", "")),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), children, max_size=5
        )
    ),
    max_leaves=25,
)
json_bodies = json_values.map(lambda value: json.dumps(value).encode())
deep_json = st.one_of(
    st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 5_000).map(lambda n: b'{"location":' * n + b"{}" + b"}" * n),
    st.integers(1, 5_000).map(lambda n: b'{"labels":{"a":' * n + b"1" + b"}}" * n),
    st.integers(1, 3_000).map(lambda n: b'{"price":{"units":' * n + b'"1"' + b"}}" * n),
)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    json_bodies,
    deep_json,
    st.lists(json_bodies, max_size=5).map(b"\n".join),
)
headers = st.lists(
    st.one_of(
        st.tuples(st.just("content-type"), st.one_of(st.sampled_from(CONTENT_TYPES), latin1)),
        st.tuples(st.just("accept"), st.one_of(st.sampled_from(ACCEPTS), latin1)),
        st.tuples(st.just("x-request-id"), latin1),
    ),
    max_size=3,
)


def chunked(body: bytes, cuts: list[int]) -> list[bytes]:
    """`body` cut at the given offsets (sorted, within the body): the chunks a server sends on."""
    edges = sorted({0, len(body), *(cut % (len(body) + 1) for cut in cuts)})
    return [body[a:b] for a, b in itertools.pairwise(edges)] or [b""]


# --- Properties ---


@FUZZ
@given(method=methods, path=random_paths)
def test_fuzz_random_paths_never_5xx(gateway: Gateway, method: str, path: str) -> None:
    assert_well_answered(call(gateway, method, path))


@FUZZ
@given(route=st.sampled_from(ROUTES), query=queries, extra=st.sampled_from(["", "%zz", "/"]))
def test_fuzz_random_queries_never_5xx(
    gateway: Gateway, route: tuple[str, str], query: str, extra: str
) -> None:
    method, path = route
    body = b"{}" if method in ("POST", "PUT", "PATCH") else b""
    assert_well_answered(call(gateway, method, f"{path}{extra}?{query}", body=body))


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    header_list=headers,
    body=bodies,
    cuts=st.lists(st.integers(0, 10**6), max_size=3),
)
def test_fuzz_random_headers_and_bodies_never_5xx(
    gateway: Gateway,
    route: tuple[str, str],
    header_list: list[tuple[str, str]],
    body: bytes,
    cuts: list[int],
) -> None:
    method, path = route
    reply = call(gateway, method, path, headers=header_list, body=chunked(body, cuts))
    assert_well_answered(reply)


@FUZZ
@given(method=methods, path=random_paths, query=queries, header_list=headers, body=bodies)
def test_fuzz_everything_at_once_never_5xx(
    gateway: Gateway,
    method: str,
    path: str,
    query: str,
    header_list: list[tuple[str, str]],
    body: bytes,
) -> None:
    reply = call(gateway, method, f"{path}?{query}", headers=header_list, body=body)
    assert_well_answered(reply)


def test_fuzz_gateway_serves_the_example(gateway: Gateway) -> None:
    """The gateway under fuzz is the real example: a good request is a 200, a bad one a 400."""
    replies: list[Any] = [
        call(gateway, "GET", "/v1/shelves/fiction/books?genres=6"),
        call(gateway, "GET", "/v1/shelves/%zz"),
    ]
    assert [reply.status for reply in replies] == [200, 400]
