"""The text of values: every field kind of `Sink` set from the query, through build_request.

`Sink` (tests/support/transcode_fixtures.py) has a field of every kind; its route `GET /v1/sink`
takes every field from the query. Expected messages come from json_format, independently of the
transcoder. Malformed values are in test_transcode_value_errors.py.
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

from tests.support.transcode_fixtures import Api, Case, assert_same, expected, sink, transcode

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
    pytest.param(
        "f_int32=1.0&f_int64=1e3", {"fInt32": 1, "fInt64": "1000"}, id="int-integral-forms"
    ),
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
    # As for integers: JSON Schema's `integer` (the OpenAPI document's) is every integral number.
    pytest.param("color=2.0", {"color": "COLOR_GREEN"}, id="enum-number-integral-forms"),
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


# --- Properties -----------------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
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
