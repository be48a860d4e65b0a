"""The regular expressions of the schemas against the codec's own checks (scalars.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.jsoncodec.scalars import (
    FieldError,
    integer_of,
    parse_duration,
    parse_timestamp,
)
from protoc_gen_restmon.runtime.jsoncodec.write import _write_duration, _write_timestamp
from protoc_gen_restmon.runtime.openapi import patterns

RANGES = [(-(2**31), 2**31 - 1), (0, 2**32 - 1), (-(2**63), 2**63 - 1), (0, 2**64 - 1)]


@pytest.mark.parametrize(("low", "high"), RANGES)
@settings(max_examples=200, deadline=None)
@given(number=st.integers(-(2**65), 2**65) | st.sampled_from([0, -1, 2**31, 2**63, 2**64 - 1]))
def test_integer_ranges_match_exactly_the_integers_in_range(
    low: int, high: int, number: int
) -> None:
    canonical = re.compile(patterns.integer_range(low, high, lenient=False))
    lenient = re.compile(patterns.integer_range(low, high, lenient=True))
    inside = low <= number <= high
    assert bool(canonical.fullmatch(str(number))) == inside
    padded = ("-00" + str(-number)) if number < 0 else ("00" + str(number))
    assert bool(lenient.fullmatch(padded)) == inside
    assert integer_of(padded) == number


@settings(max_examples=100, deadline=None)
@given(st.from_regex(patterns.TIMESTAMP_READ, fullmatch=True))
def test_timestamps_the_pattern_allows_are_read(text: str) -> None:
    parse_timestamp(timestamp_pb2.Timestamp(), text)


@settings(max_examples=100, deadline=None)
@given(st.integers(-62135596800, 253402300799), st.integers(0, 999_999_999))
def test_written_timestamps_match_the_response_pattern(seconds: int, nanos: int) -> None:
    written = _write_timestamp(timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos))
    assert re.fullmatch(patterns.TIMESTAMP_WRITE, written), written
    assert re.fullmatch(patterns.TIMESTAMP_READ, written), written


@settings(max_examples=100, deadline=None)
@given(st.from_regex(patterns.DURATION_READ, fullmatch=True))
def test_durations_the_pattern_allows_are_read(text: str) -> None:
    parse_duration(duration_pb2.Duration(), text)


@settings(max_examples=100, deadline=None)
@given(st.integers(-315576000000, 315576000000), st.integers(0, 999_999_999))
def test_written_durations_match_the_response_pattern(seconds: int, nanos: int) -> None:
    nanos = -nanos if seconds < 0 else nanos
    written = _write_duration(duration_pb2.Duration(seconds=seconds, nanos=nanos))
    assert re.fullmatch(patterns.DURATION_WRITE, written), written


@pytest.mark.parametrize(
    "text",
    ["2020-1-1T1:2:3Z", "2023-02-29T00:00:00Z", "2024-01-31T24:00:00Z", "2024-01-31T12:00:00"],
)
def test_timestamps_the_reader_refuses_the_pattern_refuses(text: str) -> None:
    with pytest.raises(FieldError):
        parse_timestamp(timestamp_pb2.Timestamp(), text)
    assert not re.fullmatch(patterns.TIMESTAMP_READ, text)


@pytest.mark.parametrize(
    ("pattern", "value", "valid"),
    [
        (patterns.BASE64_READ, "Zm9v", True),
        (patterns.BASE64_READ, "Zm8", True),
        (patterns.BASE64_READ, "Zm-_", True),
        (patterns.BASE64_READ, "Zm8=", True),
        (patterns.BASE64_READ, "Zm9", True),
        (patterns.BASE64_READ, "Z", False),
        (patterns.BASE64_READ, "Zm=", False),
        (patterns.BASE64_WRITE, "Zm8", False),
        (patterns.FIELD_MASK_READ, "", True),
        (patterns.FIELD_MASK_READ, "a.b,fooBar", True),
        (patterns.FIELD_MASK_READ, "a,,b", False),
        (patterns.DOUBLE_TEXT, "-Infinity", True),
        (patterns.DOUBLE_TEXT, "1e400", False),
        (patterns.FLOAT_TEXT, "1e38", False),
    ],
)
def test_patterns(pattern: str, value: str, valid: bool) -> None:
    assert bool(re.fullmatch(pattern, value)) == valid


def test_enum_numbers() -> None:
    pattern: Any = re.compile(patterns.enum_numbers([0, 2, -3]))
    assert [bool(pattern.fullmatch(t)) for t in ["0", "-0", "002", "-3", "-003", "3", "1"]] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
