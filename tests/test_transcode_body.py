"""build_request: the request body, JSON or google.api.HttpBody (docs/http-transcoding.md §3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from protoc_gen_restmon.runtime.status import Code, RpcError
from protoc_gen_restmon.runtime.transcode.request import TranscodeOptions
from tests.support.transcode_fixtures import (
    BOOK,
    IGNORE_FIELDS,
    Api,
    Case,
    Failure,
    assert_fails,
    assert_same,
    bad,
    expected,
    transcode,
)

# --- Body -----------------------------------------------------------------------------------------

SHELF_JSON = b'{"displayName": "Poetry", "theme": "GENRE_POETRY", "location": {"floor": 2}}'
SHELF_DOC = {"shelf": {"displayName": "Poetry", "theme": "GENRE_POETRY", "location": {"floor": 2}}}
PNG = b"\x89PNG\r\n\x1a\n\x00\xff"

BODY_CASES = [
    pytest.param(Case("CreateShelf", body=SHELF_JSON), SHELF_DOC, id="json-names"),
    pytest.param(
        Case("CreateShelf", body=b'{"display_name": "Poetry", "book_count": "3"}'),
        {"shelf": {"displayName": "Poetry", "bookCount": "3"}},
        id="proto-names",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type="application/json"),
        SHELF_DOC,
        id="content-type-json",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type='Application/JSON; Charset="UTF-8"'),
        SHELF_DOC,
        id="content-type-case-and-quoted-charset",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type="application/merge-patch+json; q=1"),
        SHELF_DOC,
        id="content-type-structured-suffix",
    ),
    pytest.param(
        Case("CreateShelf", (), "shelf_id=s9&validate_only=true", SHELF_JSON),
        SHELF_DOC | {"shelfId": "s9", "validateOnly": True},
        id="body-and-query",
    ),
    pytest.param(
        Case("CreateShelf", body=b"", content_type="text/plain"),
        {},
        id="empty-body-leaves-fields-empty",
    ),
    pytest.param(Case("CreateShelf", body=b"null"), {}, id="null-body-field"),
    pytest.param(
        Case(
            "CreateShelf",
            body=b'{"displayName": "x", "nope": {"a": 1}}',
            json_options=IGNORE_FIELDS,
        ),
        {"shelf": {"displayName": "x"}},
        id="ignore-unknown-fields",
    ),
    pytest.param(
        Case(
            "CheckoutBook",
            BOOK,
            body=b'{"memberId": "m1", "loanPeriod": "1209600s", '
            b'"deposit": {"currencyCode": "EUR", "units": "5"}}',
        ),
        {
            "name": BOOK[0],
            "memberId": "m1",
            "loanPeriod": "1209600s",
            "deposit": {"currencyCode": "EUR", "units": "5"},
        },
        id="body-star-with-path",
    ),
    pytest.param(
        Case("CheckoutBook", BOOK, body=b'{"name": "shelves/x/books/y", "libraryCard": "7"}'),
        {"name": BOOK[0], "libraryCard": "7"},
        id="body-star-url-wins",
    ),
    pytest.param(
        Case("SetTags", ("things/t1",), body=b'["a", "b"]'),
        {"name": "things/t1", "tags": ["a", "b"]},
        id="repeated-body-field",
    ),
    pytest.param(
        Case("SetCount", ("things/t1",), body=b'"9223372036854775807"'),
        {"name": "things/t1", "count": "9223372036854775807"},
        id="scalar-body-field-string",
    ),
    pytest.param(
        Case("SetCount", ("things/t1",), body=b"-12"),
        {"name": "things/t1", "count": "-12"},
        id="scalar-body-field-number",
    ),
    pytest.param(
        Case("Upload", ("files/f1",), "note=hi", PNG, "image/png"),
        {
            "name": "files/f1",
            "note": "hi",
            "file": {"contentType": "image/png", "data": "iVBORw0KGgoA/w=="},
        },
        id="http-body-field-raw",
    ),
    pytest.param(
        Case("Upload", ("files/f1",), body=b'{"a": 1}', content_type="application/json"),
        {"name": "files/f1", "file": {"contentType": "application/json", "data": "eyJhIjogMX0="}},
        id="http-body-field-json-stays-raw",
    ),
    pytest.param(
        Case("Upload", ("files/f1",), body=b"x"),
        {"name": "files/f1", "file": {"data": "eA=="}},
        id="http-body-no-content-type",
    ),
    pytest.param(
        Case("Upload", ("files/f1",)), {"name": "files/f1"}, id="http-body-empty-left-unset"
    ),
    pytest.param(
        Case("UploadRaw", body=b"a,b\n1,2\n", content_type="text/csv"),
        {"contentType": "text/csv", "data": "YSxiCjEsMgo="},
        id="http-body-whole-request",
    ),
    pytest.param(
        Case("CreateShelf", body=b"{}", options=TranscodeOptions(max_body_bytes=2)),
        {"shelf": {}},
        id="body-at-the-limit",
    ),
]


@pytest.mark.parametrize(("case", "document"), BODY_CASES)
def test_build_request_body(api: Api, case: Case, document: dict[str, Any]) -> None:
    assert_same(transcode(api, case), expected(api, case, document))


def unsupported(content_type: str) -> Failure:
    why = f'unsupported content type "{content_type}": the request body must be JSON'
    return Failure(Code.INVALID_ARGUMENT, 415, f"{why} (application/json, UTF-8)")


BODY_ERRORS = [
    pytest.param(
        Case("GetShelf", ("s1",), body=b"{}"),
        bad("GET /v1/shelves/{shelf} takes no request body, got 2 bytes"),
        id="body-on-route-without-body",
    ),
    pytest.param(
        Case("CreateShelf", body=b"{}   ", options=TranscodeOptions(max_body_bytes=4)),
        Failure(
            Code.RESOURCE_EXHAUSTED, 413, "request body of 5 bytes is over the limit of 4 bytes"
        ),
        id="body-over-limit",
    ),
    pytest.param(
        Case("Upload", ("files/f1",), body=PNG, options=TranscodeOptions(max_body_bytes=4)),
        Failure(
            Code.RESOURCE_EXHAUSTED, 413, "request body of 10 bytes is over the limit of 4 bytes"
        ),
        id="http-body-over-limit",
    ),
    pytest.param(
        Case("GetShelf", ("s1",), body=b"{}", options=TranscodeOptions(max_body_bytes=1)),
        Failure(
            Code.RESOURCE_EXHAUSTED, 413, "request body of 2 bytes is over the limit of 1 bytes"
        ),
        id="limit-checked-first",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type="text/plain"),
        unsupported("text/plain"),
        id="text-plain-415",
    ),
    pytest.param(
        Case("CreateShelf", body=b"a=b", content_type="application/x-www-form-urlencoded"),
        unsupported("application/x-www-form-urlencoded"),
        id="form-415",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type="application/json; charset=latin-1"),
        unsupported("application/json; charset=latin-1"),
        id="charset-not-utf8-415",
    ),
    pytest.param(
        Case("CreateShelf", body=SHELF_JSON, content_type="application/jsonx"),
        unsupported("application/jsonx"),
        id="json-lookalike-415",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"displayName": '),
        bad("request body is not valid JSON: Expecting value at line 1 column 17"),
        id="malformed-json",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"displayName": "\xff"}'),
        bad("request body is not valid JSON: not UTF-8 at byte 17"),
        id="not-utf8",
    ),
    pytest.param(
        Case("CreateShelf", body=b'\xef\xbb\xbf{"displayName": "x"}'),
        bad("request body is not valid JSON: starts with a byte order mark"),
        id="byte-order-mark",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"displayName": "a", "displayName": "b"}'),
        bad('request body is not valid JSON: key "displayName" appears twice in one object'),
        id="duplicate-key",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"location": {"floor": NaN}}'),
        bad('request body is not valid JSON: NaN is not JSON (write it as a string: "NaN")'),
        id="bare-nan",
    ),
    pytest.param(
        Case("CreateShelf", body=b"[" * 100_000 + b"]" * 100_000),
        bad("request body is not valid JSON: nested deeper than 100 levels"),
        id="deep-array",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"displayName": "x", "nope": 1}'),
        bad('body field "shelf.nope": no such field in bookstore.v1.Shelf'),
        id="unknown-field",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"location": {"floor": "two"}}'),
        bad('body field "shelf.location.floor": invalid int32 value "two": expected a decimal …'),
        id="wrong-type",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"location": {"floor": 2147483648}}'),
        bad('body field "shelf.location.floor": int32 value 2147483648 is out of range …'),
        id="int-out-of-range",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"theme": "GENRE_JAZZ"}'),
        bad('body field "shelf.theme": "GENRE_JAZZ" is not a value of enum bookstore.v1.Genre'),
        id="unknown-enum",
    ),
    pytest.param(
        Case("CreateShelf", body=b'"shelf"'),
        bad("request body must be a JSON object"),
        id="message-field-not-object",
    ),
    pytest.param(
        Case("CreateShelf", body=b'{"location": {"floor": 1' + b"0" * 5000 + b"}}"),
        bad("request body is not valid JSON: a number has more than 4300 digits"),
        id="huge-number",
    ),
    pytest.param(
        Case("CheckoutBook", BOOK, body=b'["memberId", "m1"]'),
        bad("request body must be a JSON object"),
        id="body-star-not-object",
    ),
    pytest.param(
        Case("CheckoutBook", BOOK, body=b'{"memberId": "m1", "libraryCard": "7"}'),
        bad('body field "libraryCard": oneof borrower already set by memberId'),
        id="body-star-two-oneof-members",
    ),
    pytest.param(
        Case("SetCount", ("things/t1",), body=b'"ten"'),
        bad('body field "count": invalid int64 value "ten": expected a decimal integer'),
        id="scalar-body-bad-value",
    ),
    pytest.param(
        Case("SetTags", ("things/t1",), body=b'{"a": 1}'),
        bad('body field "tags": expected an array, got an object'),
        id="repeated-body-not-array",
    ),
    pytest.param(
        Case("PutInner", ("x",), body=b'{"child": ' * 150 + b"{}" + b"}" * 150),
        # Refused by the JSON depth limit before any message is built (jsoncodec/depth.py).
        bad("request body is not valid JSON: nested deeper than 100 levels"),
        id="message-too-deep",
    ),
]


@pytest.mark.parametrize(("case", "failure"), BODY_ERRORS)
def test_build_request_body_errors(api: Api, case: Case, failure: Failure) -> None:
    assert_fails(api, case, failure)


FIELD_NAMES = [
    "displayName", "display_name", "location", "floor", "theme", "labels", "memberId",
    "libraryCard", "loanPeriod", "deposit", "units", "nanos", "title", "price", "pageCount",
    "publishTime", "edition", "reviews", "stars", "chapterTitles", "name", "@type", "value",
]  # fmt: skip
SCALAR_JSON = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8),
    st.sampled_from(["NaN", "Infinity", "1.5s", "2024-01-01T00:00:00Z", "GENRE_POETRY", "-0"]),
)  # fmt: skip
JSON_VALUES = st.recursive(
    SCALAR_JSON,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=4)), inner, max_size=4
        ),
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    JSON_VALUES.map(lambda value: json.dumps(value).encode()), st.binary(max_size=40)
)
CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "text/plain", "application/x+json; charset=utf-16"]
)
BODY_METHODS = [
    Case("CreateShelf"), Case("CheckoutBook", BOOK), Case("UpdateBook", BOOK),
    Case("SetTags", ("things/t",)), Case("SetCount", ("things/t",)), Case("Upload", ("files/f",)),
]  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES, content_type=CONTENT_TYPES, ignore=st.booleans())
def test_build_request_any_body_raises_only_rpc_errors(
    api: Api, body: bytes, content_type: str | None, ignore: bool
) -> None:
    options = TranscodeOptions(max_body_bytes=60)
    json_options = JsonOptions(ignore_unknown_fields=ignore)
    for case in BODY_METHODS:
        request = case._replace(body=body, content_type=content_type, options=options)
        try:
            transcode(api, request._replace(json_options=json_options))
        except RpcError as error:
            assert error.http_status in (400, 413, 415), error.message
