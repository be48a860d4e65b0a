"""Malformed values in query parameters: every field kind of `Sink`, map keys, closed enums."""

from __future__ import annotations

import pytest

from tests.support.transcode_fixtures import (
    Api,
    Case,
    assert_fails,
    bad,
    last_key,
    oneof_clash,
    sink,
)


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
    pytest.param("f_int32=1.5", f'invalid int32 value "1.5": {EXPECTED_INT}', id="int-fraction"),
    pytest.param("f_int64=1e-3", f'invalid int64 value "1e-3": {EXPECTED_INT}', id="int-exponent"),
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
        'invalid Duration "315576000001s": more than 315576000000 seconds',
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
        'query parameter "by_int64[x]": invalid int64 map key "x": …',
        id="int-key",
    ),
    pytest.param(
        "by_bool[yes]=1",
        'query parameter "by_bool[yes]": invalid bool map key "yes": …',
        id="bool-key",
    ),
    pytest.param(
        "by_uint32[-1]=1",
        'query parameter "by_uint32[-1]": uint32 map key "-1" is out of range …',
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
