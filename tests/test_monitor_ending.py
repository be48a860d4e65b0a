"""How a call ended, as the grpclib and grpc.aio adapters record it (monitor/ending.py)."""

from __future__ import annotations

import asyncio

import pytest

from protoc_gen_restmon.runtime.monitor.ending import DEADLINE_SLACK, failed_call
from protoc_gen_restmon.runtime.status import Code

DEADLINE = (Code.DEADLINE_EXCEEDED, "deadline exceeded")
CLIENT = (Code.CANCELLED, "cancelled by the client")

ENDINGS = [
    pytest.param(asyncio.CancelledError(), None, CLIENT, id="cancelled-without-deadline"),
    pytest.param(asyncio.CancelledError(), 30.0, CLIENT, id="cancelled-long-before-deadline"),
    pytest.param(asyncio.CancelledError(), DEADLINE_SLACK, DEADLINE, id="cancelled-within-slack"),
    pytest.param(asyncio.CancelledError(), 0.0, DEADLINE, id="cancelled-at-deadline"),
    pytest.param(asyncio.CancelledError(), -1.0, DEADLINE, id="cancelled-past-deadline"),
    pytest.param(KeyError("x"), 0.0, (Code.UNKNOWN, "KeyError: 'x'"), id="error-keeps-cause"),
    pytest.param(ValueError(), None, (Code.UNKNOWN, "ValueError: "), id="error-without-text"),
]


@pytest.mark.parametrize(("err", "time_remaining", "expected"), ENDINGS)
def test_failed_call_code_and_message(
    err: BaseException, time_remaining: float | None, expected: tuple[Code, str]
) -> None:
    assert failed_call(err, time_remaining) == expected


def test_failed_call_just_outside_the_slack_is_the_client() -> None:
    assert failed_call(asyncio.CancelledError(), DEADLINE_SLACK + 0.001) == CLIENT
