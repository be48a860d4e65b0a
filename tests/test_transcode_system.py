"""Google's system parameters in the query string (docs/http-transcoding.md §3), through
build_request.

`$`-prefixed keys are never fields and never a 400; documented names without `$` (`key`,
`fields`, …) are dropped only where the request has no field of that name; `$alt`'s
`enum-encoding=int` is read by `wants_enum_numbers`. The gateway's side (the response written
with enum numbers, on every backend, over HTTP) is tests/test_gateway_google.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.status import RpcError
from protoc_gen_restmon.runtime.transcode.system import (
    SYSTEM_PARAMETERS,
    is_system_parameter,
    may_ask_enum_numbers,
    wants_enum_numbers,
)
from protoc_gen_restmon.runtime.transcode.values import parse_query
from tests.support.transcode_fixtures import (
    BOOK,
    LIST,
    Api,
    Case,
    assert_fails,
    assert_same,
    bad,
    books,
    expected,
    transcode,
)

GOOGLE_CLIENT = "%24alt=json%3Benum-encoding%3Dint"  # what gapic REST clients send, encoded


DROPPED = [
    pytest.param(books(GOOGLE_CLIENT), LIST, id="google-client-alt-encoded"),
    pytest.param(books("$alt=json;enum-encoding=int"), LIST, id="alt-raw-dollar"),
    pytest.param(books("$fields=books.title&$prettyPrint=false"), LIST, id="dollar-fields"),
    pytest.param(books("$.xgafv=2&$callback=f&$ct=x"), LIST, id="xgafv-callback-ct"),
    pytest.param(books("$unknownFutureThing=1&$=2&$a.b[c]=3"), LIST, id="any-dollar-key"),
    pytest.param(
        books("fields=books.title&quotaUser=u1&prettyPrint=false&alt=json"),
        LIST,
        id="documented-without-dollar",
    ),
    pytest.param(
        books("access_token=t&oauth_token=t&callback=f&uploadType=media&upload_protocol=raw"),
        LIST,
        id="more-documented",
    ),
    pytest.param(
        books("genres=GENRE_POETRY&$alt=json&genres=1"),
        {**LIST, "genres": ["GENRE_POETRY", "GENRE_FICTION"]},
        id="between-fields",
    ),
    pytest.param(
        Case("CheckoutBook", BOOK, f"{GOOGLE_CLIENT}&key=k&fields=f"),
        {"name": BOOK[0]},
        id="body-star-takes-no-query-but-system-parameters",
    ),
    pytest.param(Case("Query", (), "key=k&$alt=proto"), {}, id="no-key-field"),
]


@pytest.mark.parametrize(("case", "document"), DROPPED)
def test_system_parameters_are_dropped(api: Api, case: Case, document: dict[str, Any]) -> None:
    assert_same(transcode(api, case), expected(api, case, document))


FIELDS = [
    pytest.param(books("key=k1&$key=ignored"), {**LIST, "key": "k1"}, id="field-named-key"),
    pytest.param(
        Case("PatchInner", ("t",), "fields=text,number"),
        {"inner": {"text": "t"}, "fields": "text,number"},
        id="field-named-fields",
    ),
]


@pytest.mark.parametrize(("case", "document"), FIELDS)
def test_documented_name_of_a_field_is_the_field(
    api: Api, case: Case, document: dict[str, Any]
) -> None:
    assert_same(transcode(api, case), expected(api, case, document))


def test_field_named_like_a_system_parameter_keeps_field_rules(api: Api) -> None:
    """`key` is ListBooksRequest's own field: given twice, it is refused like any field."""
    assert_fails(api, books("key=a&key=b"), bad('query parameter "key": field "key" given twice'))


@pytest.mark.parametrize(
    "query", ["bogus=1", "Key=1", "key.x=1", "alt.x=1", "%20$alt=1", "quota_user=1"]
)
def test_other_unknown_keys_stay_a_400(api: Api, query: str) -> None:
    with pytest.raises(RpcError) as caught:
        transcode(api, Case("Query", (), query))
    assert caught.value.http_status == 400, caught.value.message


def test_system_parameter_with_body_star_names_only_real_keys(api: Api) -> None:
    message = 'query parameter "memberId" is not allowed: every field not in the URL path'
    assert_fails(api, Case("CheckoutBook", BOOK, "$alt=json&memberId=m"), bad(message + "…"))


SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="&="), max_size=10)


@SETTINGS
@given(names=st.lists(TEXT, max_size=5), values=st.lists(TEXT, min_size=5, max_size=5))
def test_any_dollar_key_is_never_an_error(api: Api, names: list[str], values: list[str]) -> None:
    """Whatever follows the `$`, and whatever the value (percent-encoded), nothing is set."""
    query = "&".join(f"{quote('$' + n)}={quote(v)}" for n, v in zip(names, values, strict=False))
    for case in (Case("Query", (), query), books(query), Case("CheckoutBook", BOOK, query)):
        document = {"name": BOOK[0]} if case.method == "CheckoutBook" else {}
        if case.method == "ListBooks":
            document = LIST
        assert_same(transcode(api, case), expected(api, case, document))


# --- $alt: enum-encoding=int ---


ALT = [
    pytest.param("$alt=json;enum-encoding=int", True, id="dollar"),
    pytest.param(GOOGLE_CLIENT, True, id="encoded"),
    pytest.param("alt=json;enum-encoding=int", True, id="without-dollar"),
    pytest.param("$alt=json; Enum-Encoding = INT", True, id="spaces-and-case"),
    pytest.param("$alt=json;foo=bar;enum-encoding=int", True, id="among-parameters"),
    pytest.param("$alt=json", False, id="json-only"),
    pytest.param("$alt=json;enum-encoding=string", False, id="other-encoding"),
    pytest.param("$alt=enum-encoding=int", False, id="no-format"),
    pytest.param("$fields=json;enum-encoding=int", False, id="other-parameter"),
    pytest.param("altx=json;enum-encoding=int", False, id="other-key"),
    pytest.param("", False, id="empty"),
]


@pytest.mark.parametrize(("query", "wanted"), ALT)
def test_wants_enum_numbers(api: Api, query: str, wanted: bool) -> None:
    descriptor = api.classes["bookstore.v1.ListBooksRequest"].DESCRIPTOR
    assert wants_enum_numbers(parse_query(query), descriptor) is wanted
    assert may_ask_enum_numbers(query.encode()) or not wanted


def test_is_system_parameter(api: Api) -> None:
    """`key` is a field of ListBooksRequest, `alt` is not; `$`-keys never are."""
    descriptor = api.classes["bookstore.v1.ListBooksRequest"].DESCRIPTOR
    assert is_system_parameter("alt", descriptor)
    assert not is_system_parameter("key", descriptor)  # ListBooksRequest.key
    assert is_system_parameter("$key", descriptor)


def test_system_parameter_list_has_google_names() -> None:
    """The names of https://cloud.google.com/apis/docs/system-parameters without `$`."""
    assert {"key", "fields", "prettyPrint", "quotaUser", "alt", "callback", "access_token"} <= (
        SYSTEM_PARAMETERS
    )
    assert not any(name.startswith("$") for name in SYSTEM_PARAMETERS)
