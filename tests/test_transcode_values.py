"""Query parameters and the text of values (http-transcoding.md §3), through build_request.

`Sink` (tests/test_transcode.py) has a field of every kind; its route `GET /v1/sink` takes every
field from the query. Expected messages come from json_format, independently of the transcoder.
"""

from __future__ import annotations

import base64
import math
import struct
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.status import RpcError
from protoc_gen_restmon.runtime.transcode import TranscodeOptions
from protoc_gen_restmon.runtime.values import parse_query
from tests.test_transcode import (
    BOOK,
    DEFAULTS,
    IGNORE_QUERY,
    LIST,
    SHELF,
    Api,
    Case,
    assert_fails,
    assert_same,
    bad,
    expected,
    fixture_api,  # noqa: F401  (the "api" fixture)
    transcode,
)


def books(query: str | bytes, options: TranscodeOptions = DEFAULTS) -> Case:
    return Case("ListBooks", SHELF, query, options=options)


def sink(query: str | bytes) -> Case:
    return Case("Query", (), query)


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


def oneof_clash(first: str, second: str, oneof: str) -> str:
    return f'"{first}" and "{second}" are members of oneof "{oneof}": give only one'


def last_key(query: str | bytes) -> str:
    text = query.decode("utf-8", "backslashreplace") if isinstance(query, bytes) else query
    return urllib.parse.unquote(text.rpartition("&")[2].partition("=")[0])


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


# --- Values: every field kind of Sink -------------------------------------------------------------

VALUES = [
    pytest.param("f_int32=-2147483648", {"fInt32": -2147483648}, id="int32-min"),
    pytest.param("f_int32=2147483647", {"fInt32": 2147483647}, id="int32-max"),
    pytest.param(
        "f_int64=-9223372036854775808", {"fInt64": "-9223372036854775808"}, id="int64-min"
    ),
    pytest.param("f_int64=9223372036854775807", {"fInt64": "9223372036854775807"}, id="int64-max"),
    pytest.param("f_uint32=4294967295", {"fUint32": 4294967295}, id="uint32-max"),
    pytest.param(
        "f_uint64=18446744073709551615", {"fUint64": "18446744073709551615"}, id="uint64-max"
    ),
    pytest.param(
        "f_sint32=-5&f_sint64=-9223372036854775808",
        {"fSint32": -5, "fSint64": "-9223372036854775808"},
        id="sint",
    ),
    pytest.param(
        "f_fixed32=4294967295&f_fixed64=18446744073709551615",
        {"fFixed32": 4294967295, "fFixed64": "18446744073709551615"},
        id="fixed",
    ),
    pytest.param(
        "f_sfixed32=-2147483648&f_sfixed64=-1",
        {"fSfixed32": -2147483648, "fSfixed64": "-1"},
        id="sfixed",
    ),
    pytest.param("f_int32=007", {"fInt32": 7}, id="int-leading-zeros"),
    pytest.param("f_uint64=-0", {}, id="uint-minus-zero"),
    pytest.param("f_double=1.5&f_float=-2.5e-3", {"fDouble": 1.5, "fFloat": -2.5e-3}, id="floats"),
    pytest.param("f_double=.5&f_float=1.", {"fDouble": 0.5, "fFloat": 1.0}, id="float-short-forms"),
    pytest.param("f_double=NaN&f_float=NaN", {"fDouble": "NaN", "fFloat": "NaN"}, id="nan"),
    pytest.param(
        "f_double=Infinity&f_float=-Infinity",
        {"fDouble": "Infinity", "fFloat": "-Infinity"},
        id="infinities",
    ),
    pytest.param("f_double=5e-324", {"fDouble": 5e-324}, id="double-smallest-subnormal"),
    pytest.param(
        "f_double=1.7976931348623157e308", {"fDouble": 1.7976931348623157e308}, id="double-max"
    ),
    pytest.param(
        "f_float=3.4028234663852886e38", {"fFloat": 3.4028234663852886e38}, id="float-max"
    ),
    pytest.param("f_bool=true", {"fBool": True}, id="bool-true"),
    pytest.param("f_bool=false", {}, id="bool-false"),
    pytest.param("f_string=%00%F0%9F%98%80", {"fString": "\x00😀"}, id="string-nul-and-astral"),
    pytest.param("f_bytes=3q2%2B7w%3D%3D", {"fBytes": "3q2+7w=="}, id="bytes-standard-padded"),
    pytest.param("f_bytes=3q2%2B7w", {"fBytes": "3q2+7w=="}, id="bytes-standard-unpadded"),
    pytest.param("f_bytes=3q2+7w", {"fBytes": "3q2+7w=="}, id="bytes-plus-left-unencoded"),
    pytest.param("f_bytes=3q2-7w%3D%3D", {"fBytes": "3q2+7w=="}, id="bytes-url-safe-padded"),
    pytest.param("f_bytes=_-8", {"fBytes": "/+8="}, id="bytes-url-safe-unpadded"),
    pytest.param("f_bytes=", {}, id="bytes-empty"),
    pytest.param("color=COLOR_GREEN", {"color": "COLOR_GREEN"}, id="enum-name"),
    pytest.param("color=2", {"color": "COLOR_GREEN"}, id="enum-number"),
    pytest.param("color=7", {"color": 7}, id="open-enum-unknown-number"),
    pytest.param("color=-1", {"color": -1}, id="open-enum-negative-number"),
    pytest.param(
        "r_color=1&r_color=COLOR_GREEN&r_color=0", {"rColor": [1, 2, 0]}, id="repeated-enum"
    ),
    pytest.param(
        "r_int64=1&r_int64=-2&rInt64=3", {"rInt64": ["1", "-2", "3"]}, id="repeated-both-names"
    ),
    pytest.param("r_bytes=YQ&r_bytes=", {"rBytes": ["YQ==", ""]}, id="repeated-bytes"),
    pytest.param(
        "w_double=NaN&w_float=1.5", {"wDouble": "NaN", "wFloat": 1.5}, id="wrappers-float"
    ),
    pytest.param(
        "w_int64=-1&w_uint64=18446744073709551615",
        {"wInt64": "-1", "wUint64": "18446744073709551615"},
        id="wrappers-64",
    ),
    pytest.param(
        "w_int32=0&w_uint32=4294967295", {"wInt32": 0, "wUint32": 4294967295}, id="wrappers-32"
    ),
    pytest.param(
        "w_bool=false&w_string=&w_bytes=YQ",
        {"wBool": False, "wString": "", "wBytes": "YQ=="},
        id="wrappers-defaults-present",
    ),
    pytest.param(
        "at=1970-01-01T00:00:00Z", {"at": "1970-01-01T00:00:00Z"}, id="timestamp-epoch-present"
    ),
    pytest.param(
        "at=2024-02-29t12:30:00.123456789z",
        {"at": "2024-02-29T12:30:00.123456789Z"},
        id="timestamp-lowercase-nanos",
    ),
    pytest.param(
        "at=2024-01-01T00:00:00-08:00",
        {"at": "2024-01-01T08:00:00Z"},
        id="timestamp-negative-offset",
    ),
    pytest.param("at=0001-01-01T00:00:00Z", {"at": "0001-01-01T00:00:00Z"}, id="timestamp-min"),
    pytest.param(
        "at=9999-12-31T23:59:59.999999999Z",
        {"at": "9999-12-31T23:59:59.999999999Z"},
        id="timestamp-max",
    ),
    pytest.param("wait=1.5s", {"wait": "1.5s"}, id="duration"),
    pytest.param("wait=-0.000000001s", {"wait": "-0.000000001s"}, id="duration-negative-nano"),
    pytest.param("wait=0s", {"wait": "0s"}, id="duration-zero-present"),
    pytest.param("wait=315576000000s", {"wait": "315576000000s"}, id="duration-max"),
    pytest.param("mask=a.b,c", {"mask": "a.b,c"}, id="mask"),
    pytest.param(
        "mask=fooBar.bazQux,foo_bar", {"mask": "fooBar.bazQux,fooBar"}, id="mask-camel-and-proto"
    ),
    pytest.param(
        "r_at=2024-01-01T00:00:00Z&r_at=1970-01-01T00:00:00Z",
        {"rAt": ["2024-01-01T00:00:00Z", "1970-01-01T00:00:00Z"]},
        id="repeated-timestamp",
    ),
    pytest.param(
        "by_int64[-5]=a&by_int64[007]=b", {"byInt64": {"-5": "a", "7": "b"}}, id="map-int-keys"
    ),
    pytest.param(
        "by_bool[true]=y&by_bool[false]=n",
        {"byBool": {"true": "y", "false": "n"}},
        id="map-bool-keys",
    ),
    pytest.param(
        "by_uint32[1]=COLOR_RED&by_uint32[2]=2",
        {"byUint32": {"1": "COLOR_RED", "2": "COLOR_GREEN"}},
        id="map-enum-values",
    ),
    pytest.param(
        "at_by_name[a]=2024-01-01T00:00:00Z",
        {"atByName": {"a": "2024-01-01T00:00:00Z"}},
        id="map-timestamp-values",
    ),
    pytest.param("choice_text=x", {"choiceText": "x"}, id="oneof-scalar"),
    pytest.param(
        "choice_inner.text=y&choiceInner.number=2",
        {"choiceInner": {"text": "y", "number": 2}},
        id="oneof-message-twice-through",
    ),
    pytest.param(
        "inner.child.child.tags=a&inner.child.child.tags=b",
        {"inner": {"child": {"child": {"tags": ["a", "b"]}}}},
        id="deep-repeated",
    ),
    pytest.param("inner.attrs[k]=v", {"inner": {"attrs": {"k": "v"}}}, id="nested-map"),
    pytest.param("alias=x", {"alias": "x"}, id="explicit-json-name"),
    pytest.param("renamed=x", {"alias": "x"}, id="explicit-json-name-proto-name"),
    pytest.param("maybe=0", {"maybe": 0}, id="proto3-optional-default-present"),
]


@pytest.mark.parametrize(("query", "document"), VALUES)
def test_build_request_values(api: Api, query: str, document: dict[str, Any]) -> None:
    case = sink(query)
    assert_same(transcode(api, case), expected(api, case, document))


CLOSED_ENUM = [
    pytest.param(
        "level=LEVEL_HIGH&levels=1&levels=LEVEL_HIGH",
        {"level": "LEVEL_HIGH", "levels": [1, 2]},
        id="closed-enum-names-and-numbers",
    ),
]


@pytest.mark.parametrize(("query", "document"), CLOSED_ENUM)
def test_build_request_closed_enum(api: Api, query: str, document: dict[str, Any]) -> None:
    case = Case("Get", (), query)
    assert_same(transcode(api, case), expected(api, case, document))


def value_error(key: str, why: str) -> str:
    return f'query parameter "{key}": {why}'


INT32_RANGE = "is out of range [-2147483648, 2147483647]"
EXPECTED_INT = "expected a decimal integer"
EXPECTED_FLOAT = 'expected a decimal number, "NaN", "Infinity" or "-Infinity"'

VALUE_ERRORS = [
    pytest.param("f_int32=2147483648", f'int32 value "2147483648" {INT32_RANGE}', id="int32-over"),
    pytest.param(
        "f_int32=-2147483649", f'int32 value "-2147483649" {INT32_RANGE}', id="int32-under"
    ),
    pytest.param(
        "f_sfixed32=2147483648", 'sfixed32 value "2147483648" is out of range …', id="sfixed32-over"
    ),
    pytest.param(
        "f_uint32=-1", 'uint32 value "-1" is out of range [0, 4294967295]', id="uint32-negative"
    ),
    pytest.param(
        "f_fixed32=4294967296",
        'fixed32 value "4294967296" is out of range [0, 4294967295]',
        id="fixed32-over",
    ),
    pytest.param(
        "f_int64=9223372036854775808",
        'int64 value "9223372036854775808" is out of range …',
        id="int64-over",
    ),
    pytest.param(
        "f_uint64=18446744073709551616",
        'uint64 value "18446744073709551616" is out of range …',
        id="uint64-over",
    ),
    pytest.param(
        "f_sint64=" + "9" * 5000,
        f'sint64 value "{"9" * 61}..." is out of range …',
        id="int-5000-digits",
    ),
    pytest.param("f_int32=%2B1", f'invalid int32 value "+1": {EXPECTED_INT}', id="int-plus-sign"),
    pytest.param("f_int32=+1", f'invalid int32 value " 1": {EXPECTED_INT}', id="int-space"),
    pytest.param(
        "f_int32=1_000", f'invalid int32 value "1_000": {EXPECTED_INT}', id="int-underscore"
    ),
    pytest.param(
        "f_int32=1.0", f'invalid int32 value "1.0": {EXPECTED_INT}', id="int-decimal-point"
    ),
    pytest.param("f_int64=1e3", f'invalid int64 value "1e3": {EXPECTED_INT}', id="int-exponent"),
    pytest.param("f_int64=0x10", f'invalid int64 value "0x10": {EXPECTED_INT}', id="int-hex"),
    pytest.param("f_int64=", f'invalid int64 value "": {EXPECTED_INT}', id="int-empty"),
    pytest.param(
        "f_int64=%D9%A1", f'invalid int64 value "\u0661": {EXPECTED_INT}', id="int-non-ascii-digit"
    ),
    pytest.param(
        "f_double=nan", f'invalid double value "nan": {EXPECTED_FLOAT}', id="float-lowercase-nan"
    ),
    pytest.param("f_double=inf", f'invalid double value "inf": {EXPECTED_FLOAT}', id="float-inf"),
    pytest.param("f_double=1,5", f'invalid double value "1,5": {EXPECTED_FLOAT}', id="float-comma"),
    pytest.param("f_double=", f'invalid double value "": {EXPECTED_FLOAT}', id="float-empty"),
    pytest.param("f_double=1e999", 'double value "1e999" is out of range', id="double-overflow"),
    pytest.param("f_float=3.5e38", 'float value "3.5e38" is out of range', id="float-overflow"),
    pytest.param("f_bool=1", 'invalid bool value "1": expected "true" or "false"', id="bool-one"),
    pytest.param(
        "f_bool=TRUE", 'invalid bool value "TRUE": expected "true" or "false"', id="bool-uppercase"
    ),
    pytest.param(
        "color=2147483648",
        'int32 value "2147483648" is out of range …',
        id="enum-number-over-int32",
    ),
    pytest.param(
        "color=COLOR_RED%20",
        '"COLOR_RED " is not a value of enum kitchen.v1.Color',
        id="enum-trailing-space",
    ),
    pytest.param(
        "f_bytes=ab%3D", 'invalid bytes value "ab=": expected base64', id="bytes-bad-padding"
    ),
    pytest.param("f_bytes=a", 'invalid bytes value "a": expected base64', id="bytes-one-char"),
    pytest.param(
        "f_bytes=YQ%3D%3D%3D", 'invalid bytes value "YQ===": expected base64', id="bytes-three-pads"
    ),
    pytest.param(
        "f_bytes=%C3%A9", 'invalid bytes value "é": expected base64', id="bytes-not-alphabet"
    ),
    pytest.param(
        "at=2024-01-01T00:00:00",
        'invalid Timestamp "2024-01-01T00:00:00": expected RFC 3339, …',
        id="timestamp-no-offset",
    ),
    pytest.param(
        "at=2024-01-01 00:00:00Z",
        'invalid Timestamp "2024-01-01 00:00:00Z": expected RFC 3339, …',
        id="timestamp-space",
    ),
    pytest.param(
        "at=2024-02-30T00:00:00Z",
        'invalid Timestamp "2024-02-30T00:00:00Z": day is out of range for month',
        id="timestamp-no-such-day",
    ),
    pytest.param(
        "at=2024-01-01T00:00:00.1234567891Z",
        'invalid Timestamp "2024-01-01T00:00:00.1234567891Z": …',
        id="timestamp-ten-digits",
    ),
    pytest.param(
        "at=0000-01-01T00:00:00Z",
        'invalid Timestamp "0000-01-01T00:00:00Z": year 0 is out of range',
        id="timestamp-year-zero",
    ),
    pytest.param(
        "wait=1.5", 'invalid Duration "1.5": expected seconds, e.g. "1.5s"', id="duration-no-unit"
    ),
    pytest.param(
        "wait=1e3s",
        'invalid Duration "1e3s": expected seconds, e.g. "1.5s"',
        id="duration-exponent",
    ),
    pytest.param(
        "wait=1.0000000001s",
        'invalid Duration "1.0000000001s": expected seconds, …',
        id="duration-ten-digits",
    ),
    pytest.param(
        "wait=315576000001s",
        'invalid Duration "315576000001s": Couldn\'t parse duration: …',
        id="duration-over",
    ),
    pytest.param("mask=a,,b", 'invalid FieldMask path ""', id="mask-empty-path"),
    pytest.param("mask=a.1b", 'invalid FieldMask path "a.1b"', id="mask-bad-segment"),
    pytest.param(
        "w_uint32=-1", 'uint32 value "-1" is out of range [0, 4294967295]', id="wrapper-range"
    ),
    pytest.param(
        "w_bool=yes", 'invalid bool value "yes": expected "true" or "false"', id="wrapper-bad-value"
    ),
    pytest.param(
        "inners.text=x",
        '"inners" is a repeated field: a path cannot go through it',
        id="through-repeated",
    ),
    pytest.param(
        "inners=x",
        "a kitchen.v1.Inner is not one value: give its fields, e.g. inners.<field>",
        id="repeated-message-leaf",
    ),
    pytest.param(
        "extra=1",
        "a google.protobuf.Struct is not one value: give its fields, e.g. extra.<field>",
        id="struct-leaf",
    ),
    pytest.param(
        "inner_by_name[a]=x",
        "map values of type kitchen.v1.Inner cannot be given as query parameters",
        id="map-message-values",
    ),
    pytest.param(
        "choice_text=x&choice_inner.text=y",
        '"choice_text" and "choice_inner" are members of oneof "choice": give only one',
        id="oneof-then-path",
    ),
]


@pytest.mark.parametrize(("query", "why"), VALUE_ERRORS)
def test_build_request_value_errors(api: Api, query: str, why: str) -> None:
    assert_fails(api, sink(query), bad(value_error(last_key(query), why)))


MAP_KEY_ERRORS = [
    pytest.param(
        "by_int64[x]=1",
        'query parameter "by_int64[x]" (map key): invalid int64 value "x": …',
        id="int-key",
    ),
    pytest.param(
        "by_bool[yes]=1",
        'query parameter "by_bool[yes]" (map key): invalid bool value "yes": …',
        id="bool-key",
    ),
    pytest.param(
        "by_uint32[-1]=1",
        'query parameter "by_uint32[-1]" (map key): uint32 value "-1" is out of range …',
        id="uint-key",
    ),
    pytest.param(
        "by_int64[1]=a&by_int64[01]=b",
        'query parameter "by_int64[01]": map key "01" given twice',
        id="same-key-two-spellings",
    ),
    pytest.param(
        "by_uint32[1]=BLUE",
        'query parameter "by_uint32[1]": "BLUE" is not a value of enum kitchen.v1.Color',
        id="enum-value",
    ),
    pytest.param(
        "choice_inner.text=y&choice_text=x",
        'query parameter "choice_text": ' + oneof_clash("choice_inner", "choice_text", "choice"),
        id="oneof-path-then-scalar",
    ),
]


@pytest.mark.parametrize(("query", "message"), MAP_KEY_ERRORS)
def test_build_request_map_key_and_oneof_errors(api: Api, query: str, message: str) -> None:
    assert_fails(api, sink(query), bad(message))


@pytest.mark.parametrize(
    ("query", "why"),
    [
        pytest.param(
            "level=3", "3 is not a value of closed enum kitchen.v1.Level", id="closed-enum-number"
        ),
        pytest.param(
            "levels=0",
            "0 is not a value of closed enum kitchen.v1.Level",
            id="closed-enum-repeated",
        ),
    ],
)
def test_build_request_closed_enum_errors(api: Api, query: str, why: str) -> None:
    key = query.partition("=")[0]
    assert_fails(api, Case("Get", (), query), bad(value_error(key, why)))


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
    assert (caught.value.status, caught.value.message) == (400, message)


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
            assert error.status == 400, error.message


INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)
INT_TYPES = {
    "f_int32": INT32, "f_int64": INT64, "f_uint32": UINT32, "f_uint64": UINT64, "f_sint32": INT32,
    "f_sint64": INT64, "f_fixed32": UINT32, "f_fixed64": UINT64, "f_sfixed32": INT32,
    "f_sfixed64": INT64, "w_int64": INT64, "w_uint64": UINT64, "w_int32": INT32, "w_uint32": UINT32,
}  # fmt: skip
EXTREMES = [-(2**63), 2**63 - 1, 2**64 - 1, -(2**31), 2**31 - 1, 2**32 - 1, 0, -1]
STRINGS = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from("&=+%#[] ")), max_size=20)


def int_values(low: int, high: int) -> st.SearchStrategy[int]:
    extremes = [v for v in EXTREMES if low <= v <= high]
    return st.one_of(st.integers(low, high), st.sampled_from(extremes))


SCALARS: dict[str, st.SearchStrategy[Any]] = {
    **{name: int_values(*bounds) for name, bounds in INT_TYPES.items()},
    "f_double": st.floats(),
    "w_double": st.floats(),
    "f_float": st.floats(width=32),
    "w_float": st.floats(width=32),
    "f_bool": st.booleans(),
    "w_bool": st.booleans(),
    "f_string": STRINGS,
    "w_string": STRINGS,
    "f_bytes": st.binary(max_size=20),
    "w_bytes": st.binary(max_size=20),
    "color": st.sampled_from([0, 1, 2]),
}
COLORS = ["COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_GREEN"]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def encode_value(draw: st.DrawFn, name: str, value: Any) -> str:
    """The text a client writes for `value`, in one of the accepted spellings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        special = {math.inf: "Infinity", -math.inf: "-Infinity"}
        return "NaN" if math.isnan(value) else special.get(value, repr(value))
    if isinstance(value, bytes):
        encode = draw(st.sampled_from([base64.b64encode, base64.urlsafe_b64encode]))
        padded = encode(value).decode()
        return str(draw(st.sampled_from([padded, padded.rstrip("=")])))
    if name == "color":
        return str(draw(st.sampled_from([str(value), COLORS[value]])))
    return str(value)


@st.composite
def sink_queries(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A query setting some scalar fields of Sink, and the values it sets."""
    shuffled = draw(st.permutations(sorted(SCALARS)))
    values = {name: draw(SCALARS[name]) for name in shuffled[: draw(st.integers(1, 6))]}
    quote = draw(st.sampled_from([urllib.parse.quote, urllib.parse.quote_plus]))
    pairs = [
        f"{quote(draw(st.sampled_from([name, camel(name)])), safe='')}="
        f"{quote(encode_value(draw, name, value), safe='')}"
        for name, value in values.items()
    ]
    return "&".join(pairs), values


def same_value(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, float) and math.isnan(wanted):
        return math.isnan(actual)
    if isinstance(wanted, float):  # -0.0 too
        return struct.pack("<d", actual) == struct.pack("<d", wanted)
    return bool(actual == wanted)


@SETTINGS
@given(drawn=sink_queries())
def test_build_request_scalar_values_round_trip(
    api: Api, drawn: tuple[str, dict[str, Any]]
) -> None:
    query, values = drawn
    message = transcode(api, sink(query))
    for name, wanted in values.items():
        actual = getattr(message, name)
        if name.startswith("w_"):
            assert message.HasField(name), name
            actual = actual.value
        assert same_value(actual, wanted), (name, actual, wanted)
