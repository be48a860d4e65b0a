"""Query-string parsing of the admin API: every value is either accepted within its bounds or
refused with INVALID_ARGUMENT naming the parameter."""

from __future__ import annotations

import re
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.admin.queries import Params, parse_query
from protoc_gen_restmon.runtime.monitor.model import CallStatus, KeyType
from protoc_gen_restmon.runtime.status import Code, RpcError

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def query(**values: str) -> Params:
    return parse_query(urllib.parse.urlencode(values).encode())


def refusal(name: str, **values: str) -> RpcError:
    with pytest.raises(RpcError) as raised:
        params = query(**values)
        params.since(NOW)
        params.request_query()
        params.boolean("is_active")
        params.key_type()
        params.user_id()
    error = raised.value
    assert error.code == Code.INVALID_ARGUMENT and error.http_status == 400
    assert error.message.startswith(f"{name}: ")
    return error


@given(st.integers())
def test_hours_are_accepted_exactly_within_bounds(hours: int) -> None:
    if 1 <= hours <= 8760:
        assert query(hours=str(hours)).since(NOW) == NOW - timedelta(hours=hours)
    else:
        assert "out of range [1, 8760]" in refusal("hours", hours=str(hours)).message


@given(st.text(min_size=1).filter(lambda t: not re.fullmatch(r"-?[0-9]+", t)))
def test_non_integer_hours_are_refused(text: str) -> None:
    assert "expected an integer" in refusal("hours", hours=text).message


@given(st.integers(), st.integers())
def test_limit_and_offset_bounds(limit: int, offset: int) -> None:
    params = query(limit=str(limit), offset=str(offset))
    if 1 <= limit <= 1000 and offset >= 0 and offset < 2**63:
        request = params.request_query()
        assert (request.limit, request.offset) == (limit, offset)
    else:
        with pytest.raises(RpcError, match=r"^(limit|offset): "):
            params.request_query()


def test_defaults() -> None:
    params = query()
    request = params.request_query()
    assert (request.limit, request.offset, request.status) == (100, 0, None)
    assert params.since(NOW) == NOW - timedelta(hours=24)
    assert (params.boolean("is_active"), params.key_type(), params.user_id()) == (None, None, None)


@pytest.mark.parametrize("status", list(CallStatus))
def test_every_status_filters(status: CallStatus) -> None:
    assert query(status=status.value).request_query().status is status


@pytest.mark.parametrize("key_type", list(KeyType))
def test_every_key_type_filters(key_type: KeyType) -> None:
    assert query(key_type=key_type.value).key_type() is key_type


BOOLEANS = [
    pytest.param("true", True, id="true"),
    pytest.param("True", True, id="capitalised"),
    pytest.param("1", True, id="one"),
    pytest.param("false", False, id="false"),
    pytest.param("0", False, id="zero"),
    pytest.param("no", False, id="no"),
]


@pytest.mark.parametrize(("text", "value"), BOOLEANS)
def test_booleans(text: str, value: bool) -> None:
    assert query(is_active=text).boolean("is_active") is value


@pytest.mark.parametrize("text", [" 5", "1_000", "+5", "\u0663", "5.0", "1e3"])
def test_integers_are_plain_ascii_digits(text: str) -> None:
    assert "expected an integer" in refusal("hours", hours=text).message


def test_the_last_value_of_a_repeated_parameter_wins() -> None:
    assert parse_query(b"hours=1&hours=2").since(NOW) == NOW - timedelta(hours=2)


def test_a_query_string_that_is_not_ascii_is_refused() -> None:
    with pytest.raises(RpcError, match="malformed query string"):
        parse_query("hours=\u00e9".encode())
