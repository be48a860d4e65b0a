"""Query parameters through build_request, and the decoding of the query string itself."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.status import RpcError
from protoc_gen_restmon.runtime.transcode.request import TranscodeOptions
from protoc_gen_restmon.runtime.transcode.values import parse_query
from tests.support.transcode_fixtures import (
    BOOK,
    IGNORE_QUERY,
    LIST,
    Api,
    Case,
    assert_fails,
    assert_same,
    bad,
    books,
    expected,
    last_key,
    oneof_clash,
    transcode,
)

# --- Query parameters of the example protos -----------------------------------------------------

BOOK_QUERIES = [
    pytest.param(
        "page.page_size=10&page.page_token=a",
        {"page": {"pageSize": 10, "pageToken": "a"}},
        id="nested-proto-names",
    ),
    pytest.param(
        "page.pageSize=10&page.pageToken=a",
        {"page": {"pageSize": 10, "pageToken": "a"}},
        id="nested-json-names",
    ),
    pytest.param("page.pageSize=0", {"page": {}}, id="nested-default-value-creates-parent"),
    pytest.param(
        "genres=GENRE_FICTION&genres=6",
        {"genres": ["GENRE_FICTION", "GENRE_POETRY"]},
        id="repeated-keys-in-order",
    ),
    pytest.param("format=FORMAT_EBOOK", {"format": "FORMAT_EBOOK"}, id="nested-enum-type"),
    pytest.param(
        "sort_order=SORT_ORDER_DESCENDING",
        {"sortOrder": "SORT_ORDER_DESCENDING"},
        id="enum-of-other-package",
    ),
    pytest.param(
        "labels[signed]=yes&labels[lang]=en",
        {"labels": {"signed": "yes", "lang": "en"}},
        id="map-entries",
    ),
    pytest.param(
        "labels[a.b[c]]=1&labels[]=e", {"labels": {"a.b[c]": "1", "": "e"}}, id="map-keys-odd"
    ),
    pytest.param("labels%5Bk%5D=v", {"labels": {"k": "v"}}, id="map-brackets-percent-encoded"),
    pytest.param("min_page_count=0", {"minPageCount": 0}, id="wrapper-zero-is-present"),
    pytest.param(
        "minPageCount=3&minRating=4.5",
        {"minPageCount": 3, "minRating": 4.5},
        id="top-level-json-names",
    ),
    pytest.param(
        "published_after=2024-01-01T01:00:00%2B01:00",
        {"publishedAfter": "2024-01-01T00:00:00Z"},
        id="timestamp-offset",
    ),
    pytest.param(
        "published_after=2024-01-01T01:00:00+01:00",
        {"publishedAfter": "2024-01-01T00:00:00Z"},
        id="timestamp-offset-plus-unencoded",
    ),
    pytest.param("title_contains=", {"titleContains": ""}, id="optional-empty-is-present"),
    pytest.param("title_contains", {"titleContains": ""}, id="key-without-equals"),
    pytest.param(
        "title_contains=war+and+peace", {"titleContains": "war and peace"}, id="plus-is-space"
    ),
    pytest.param(
        "title_contains=caf%C3%A9%20%26%3D%2B%23%25",
        {"titleContains": "café &=+#%"},
        id="percent-escapes",
    ),
    pytest.param("title_contains=a=b=c", {"titleContains": "a=b=c"}, id="value-keeps-later-equals"),
    pytest.param("title_contains=✓".encode(), {"titleContains": "✓"}, id="raw-utf8-bytes"),
    pytest.param("title_contains=✓", {"titleContains": "✓"}, id="str-query-with-unicode"),
    pytest.param("&&page.page_size=1&", {"page": {"pageSize": 1}}, id="empty-pieces-skipped"),
    pytest.param("", {}, id="no-query"),
    pytest.param("author=authors/a1", {"author": "authors/a1"}, id="oneof-member"),
    pytest.param("isbn10=0123456789", {"isbn10": "0123456789"}, id="oneof-member-json-name"),
]


@pytest.mark.parametrize(("query", "document"), BOOK_QUERIES)
def test_build_request_query_list_books(api: Api, query: str, document: dict[str, Any]) -> None:
    case = books(query)
    assert_same(transcode(api, case), expected(api, case, LIST | document))


OTHER_QUERIES = [
    pytest.param(
        Case("ListShelves", (), "location.building=Main&location.floor=-2&theme=6"),
        {"location": {"building": "Main", "floor": -2}, "theme": "GENRE_POETRY"},
        id="nested-message-and-enum-number",
    ),
    pytest.param(
        Case("GetBook", BOOK, "read_mask=title,publishTime,price.currency_code"),
        {"name": BOOK[0], "readMask": "title,publishTime,price.currencyCode"},
        id="field-mask-proto-and-camel-paths",
    ),
    pytest.param(
        Case("GetBook", ("authors/a/books/b",), "readMask=title", nth=1),
        {"name": "authors/a/books/b", "readMask": "title"},
        id="additional-binding",
    ),
    pytest.param(
        Case("DeleteBook", BOOK, "etag=3q2-7w"), {"name": BOOK[0], "etag": "3q2+7w=="}, id="bytes"
    ),
    pytest.param(
        Case("DeleteShelf", ("s1",), "force=true"), {"shelf": "s1", "force": True}, id="bool"
    ),
    pytest.param(
        books("nope=1&page.nope=2&page.page_size=3", IGNORE_QUERY),
        LIST | {"page": {"pageSize": 3}},
        id="ignore-unknown-query",
    ),
    pytest.param(
        Case("GetBook", BOOK, "name=x", options=IGNORE_QUERY),
        {"name": BOOK[0]},
        id="ignore-path-bound",
    ),
    pytest.param(
        Case("CreateShelf", (), "shelf.name=x&shelf_id=s2", options=IGNORE_QUERY),
        {"shelfId": "s2"},
        id="ignore-body-bound",
    ),
    pytest.param(
        Case("CheckoutBook", BOOK, "memberId=m1", options=IGNORE_QUERY),
        {"name": BOOK[0]},
        id="ignore-with-body-star",
    ),
]


@pytest.mark.parametrize(("case", "document"), OTHER_QUERIES)
def test_build_request_query(api: Api, case: Case, document: dict[str, Any]) -> None:
    assert_same(transcode(api, case), expected(api, case, document))


UNKNOWN_PARAMETERS = [
    pytest.param("nope=1", 'bookstore.v1.ListBooksRequest has no field "nope"', id="top-level"),
    pytest.param("page.nope=1", 'common.v1.PageRequest has no field "nope"', id="nested"),
    pytest.param("page..page_size=1", 'common.v1.PageRequest has no field ""', id="empty-segment"),
    pytest.param("=1", 'bookstore.v1.ListBooksRequest has no field ""', id="empty-key"),
    pytest.param(
        "Page.page_size=1", 'bookstore.v1.ListBooksRequest has no field "Page"', id="case"
    ),
    pytest.param(
        "labels[k=1", 'bookstore.v1.ListBooksRequest has no field "labels[k"', id="open-["
    ),
]


@pytest.mark.parametrize(("query", "why"), UNKNOWN_PARAMETERS)
def test_build_request_unknown_query_parameter(api: Api, query: str, why: str) -> None:
    assert_fails(api, books(query), bad(f'unknown query parameter "{last_key(query)}": {why}'))


BOOK_QUERY_ERRORS = [
    pytest.param(
        "min_rating=1&min_rating=2", 'field "min_rating" given twice', id="singular-twice"
    ),
    pytest.param(
        "page.page_size=1&page.pageSize=1",
        'field "page.page_size" given twice',
        id="twice-two-names",
    ),
    pytest.param("labels[k]=1&labels[k]=2", 'map key "k" given twice', id="map-key-twice"),
    pytest.param(
        "author=a&isbn_10=b", oneof_clash("author", "isbn_10", "lookup"), id="two-oneof-members"
    ),
    pytest.param(
        "isbn10=&author=a",
        oneof_clash("isbn_10", "author", "lookup"),
        id="two-oneof-members-first-empty",
    ),
    pytest.param(
        "min_rating.x=1",
        '"min_rating" is not a message field, it has no fields',
        id="through-scalar",
    ),
    pytest.param("labels.env=prod", '"labels" is a map: write labels[KEY]=VALUE', id="through-map"),
    pytest.param(
        "published_after.seconds=1",
        '"published_after" is a google.protobuf.Timestamp: give it as one value',
        id="into-well-known-type",
    ),
    pytest.param(
        "min_page_count.value=1",
        '"min_page_count" is a google.protobuf.Int32Value: give it as one value',
        id="into-wrapper",
    ),
    pytest.param(
        "page=1",
        "a common.v1.PageRequest is not one value: give its fields, e.g. page.<field>",
        id="message-leaf",
    ),
    pytest.param("labels=prod", '"labels" is a map: write labels[KEY]=VALUE', id="map-without-key"),
    pytest.param(
        "min_rating[x]=1",
        '"min_rating" is not a map field: [KEY] is only for maps',
        id="key-on-non-map",
    ),
    pytest.param(
        "genres=GENRE_JAZZ",
        '"GENRE_JAZZ" is not a value of enum bookstore.v1.Genre',
        id="unknown-enum-name",
    ),
    pytest.param(
        "genres=genre_poetry",
        '"genre_poetry" is not a value of enum bookstore.v1.Genre',
        id="enum-case-sensitive",
    ),
    pytest.param(
        "published_after=yesterday",
        'invalid Timestamp "yesterday": expected RFC 3339, e.g. 2024-01-31T12:00:00Z',
        id="bad-timestamp",
    ),
]


@pytest.mark.parametrize(("query", "why"), BOOK_QUERY_ERRORS)
def test_build_request_query_errors_list_books(api: Api, query: str, why: str) -> None:
    assert_fails(api, books(query), bad(f'query parameter "{last_key(query)}": {why}'))


OTHER_QUERY_ERRORS = [
    pytest.param(
        Case("GetBook", BOOK, "name=other"),
        'query parameter "name" is not allowed: field "name" is in the URL path',
        id="path-bound",
    ),
    pytest.param(
        Case("UpdateShelf", ("shelves/s1",), "shelf.display_name=x"),
        'query parameter "shelf.display_name" is not allowed: field "shelf" comes from the body',
        id="body-bound",
    ),
    pytest.param(
        Case("CreateShelf", (), "shelf.location.nope=1"),
        'query parameter "shelf.location.nope" is not allowed: field "shelf" comes from the body',
        id="body-bound-before-unknown",
    ),
    pytest.param(
        Case("CheckoutBook", BOOK, "member_id=m1"),
        'query parameter "member_id" is not allowed: '
        "every field not in the URL path comes from the body",
        id="any-parameter-with-body-star",
    ),
    pytest.param(
        books("page.page_size=x", IGNORE_QUERY),
        'query parameter "page.page_size": invalid int32 value "x": expected a decimal integer',
        id="ignore-unknown-keeps-value-errors",
    ),
    pytest.param(
        books("title_contains=%zz"),
        'query string "title_contains=%zz": malformed percent escape',
        id="malformed-escape",
    ),
]


@pytest.mark.parametrize(("case", "message"), OTHER_QUERY_ERRORS)
def test_build_request_query_errors(api: Api, case: Case, message: str) -> None:
    assert_fails(api, case, bad(message))


# --- Form decoding --------------------------------------------------------------------------------

FORMS = [
    pytest.param(
        "a=1&b=x+y&b=%C3%A9", (("a", "1"), ("b", "x y"), ("b", "é")), id="plus-and-escapes"
    ),
    pytest.param(b"k=%2B%26%3D%25%23", (("k", "+&=%#"),), id="escaped-delimiters"),
    pytest.param("flag&=v&k=", (("flag", ""), ("", "v"), ("k", "")), id="missing-parts"),
    pytest.param(";a=1;b", ((";a", "1;b"),), id="semicolon-is-not-a-separator"),
    pytest.param("%41%62=%4a%4B", (("Ab", "JK"),), id="hex-any-case"),
]


@pytest.mark.parametrize(("query", "pairs"), FORMS)
def test_parse_query(query: str | bytes, pairs: tuple[tuple[str, str], ...]) -> None:
    assert parse_query(query) == pairs


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param("a=%", 'query string "a=%": malformed percent escape', id="lone-percent"),
        pytest.param("a=%g0", 'query string "a=%g0": malformed percent escape', id="non-hex"),
        pytest.param(b"a=%C3", 'query string "a=%C3": not valid UTF-8', id="truncated-utf8"),
        pytest.param("a=abc%2", 'query string "a=abc%2": malformed percent escape', id="truncated"),
        pytest.param("t%le=1", 'query string "t%le=1": malformed percent escape', id="in-key"),
        pytest.param(b"a=\xff", 'query string "a=\\xff": not valid UTF-8', id="raw-bytes"),
        pytest.param("a=\udcff", "query string: surrogates not allowed", id="lone-surrogate"),
        pytest.param(
            b"a=%ED%A0%80", 'query string "a=%ED%A0%80": not valid UTF-8', id="encoded-surrogate"
        ),
    ],
)
def test_parse_query_errors(query: str | bytes, message: str) -> None:
    with pytest.raises(RpcError) as caught:
        parse_query(query)
    assert (caught.value.http_status, caught.value.message) == (400, message)


# --- Properties -----------------------------------------------------------------------------------

KEYS = [
    "f_int32", "fInt64", "f_uint64", "f_double", "f_float", "f_bool", "f_bytes", "color", "r_color",
    "w_int32", "wUint64", "at", "wait", "mask", "by_int64[1]", "by_bool[x]", "at_by_name[k]",
    "inner.text", "inner.child.number", "inners.text", "extra", "choice_text", "choice_inner.text",
    "maybe", "alias", "inner_by_name[a]", "x[", "a.b.c", "",
]  # fmt: skip
JUNK = st.sampled_from(
    ["%", "%zz", "%FF", "%C3", "+", "=", "&", "[", "]", ".", "%00", "%5B", "NaN"]
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
PIECE = st.lists(st.one_of(st.sampled_from(KEYS), TEXT, JUNK), min_size=1, max_size=4).map("".join)
QUERY = st.lists(st.tuples(PIECE, st.one_of(PIECE, TEXT, JUNK)), max_size=8).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
)
SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(query=st.one_of(QUERY, st.binary(max_size=64), TEXT), ignore=st.booleans())
def test_build_request_any_query_raises_only_rpc_errors(
    api: Api, query: str | bytes, ignore: bool
) -> None:
    options = TranscodeOptions(ignore_unknown_query=ignore)
    for case in (Case("Query", (), query, options=options), books(query, options)):
        try:
            transcode(api, case)
        except RpcError as error:
            assert error.http_status == 400, error.message
