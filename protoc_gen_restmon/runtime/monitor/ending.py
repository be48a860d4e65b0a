"""How a call ended: the code and message recorded when its handler raised, for every adapter.

The grpclib adapter (`grpclib_events`) and the grpc.aio one (`grpc_aio`) first read a status of
their transport's own from the exception (grpclib's `GRPCError`, grpc.aio's `abort`); anything
else is classified here, once: a cancellation is the deadline or the client, any other exception
an UNKNOWN carrying its cause.
"""

from __future__ import annotations

import asyncio

from protoc_gen_restmon.runtime.status import Code

# A call cancelled this close (seconds) to its deadline ran out of time. A client gives up at
# its deadline and resets the stream; the reset often reaches the server before the server's
# own timer fires, which started later (when the request arrived) and may be late on a busy loop.
DEADLINE_SLACK = 0.5


def cancelled_call(time_remaining: float | None) -> tuple[Code, str]:
    """Why a cancelled handler was cancelled: its deadline passed (the seconds it had left, None
    without a deadline), or the client went away."""
    if time_remaining is not None and time_remaining <= DEADLINE_SLACK:
        return Code.DEADLINE_EXCEEDED, "deadline exceeded"
    return Code.CANCELLED, "cancelled by the client"


def failed_call(err: BaseException, time_remaining: float | None) -> tuple[Code, str]:
    """The code and message of a call whose handler raised `err`, which carries no status of the
    transport's own; `time_remaining` is the call's, in seconds (None without a deadline).

    `CancelledError()` with 0.2 s left -> (DEADLINE_EXCEEDED, "deadline exceeded");
    `KeyError('x')` -> (UNKNOWN, "KeyError: 'x'"): the servers answer UNKNOWN (grpclib with
    "Internal Server Error"), the record keeps the cause."""
    if isinstance(err, asyncio.CancelledError):
        return cancelled_call(time_remaining)
    return Code.UNKNOWN, f"{type(err).__name__}: {err}"
