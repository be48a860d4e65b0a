"""One call being recorded (`MonitoredCall`) and what the monitor knows of its method.

The event loop builds a `MonitoredCall` in `Monitor.begin…` and finishes it; the writer thread
turns it into records. Everything that only the record needs is left to the writer thread: the
call id, the datetimes, and, for callers that pass a `describe` function instead of a ready
`CallInfo` (the grpclib observers), the CallInfo itself: formatting the peer and copying the
metadata is the largest part of the monitor's per-call cost on the event loop.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from protoc_gen_restmon.runtime.gateway.observe import CallInfo
from protoc_gen_restmon.runtime.monitor.metrics import MethodSeries
from protoc_gen_restmon.runtime.monitor.model import ApiKey, CallRecord, CallStatus
from protoc_gen_restmon.runtime.status import Code

if TYPE_CHECKING:
    from protoc_gen_restmon.runtime.monitor.hooks import Hook
    from protoc_gen_restmon.runtime.monitor.monitor import Monitor


@dataclass(frozen=True, slots=True)
class MethodState:
    """What the monitor knows of one method: its metrics, whether it needs a key, its hook."""

    service: str  # package.Service
    method: str  # Method
    path: str  # /package.Service/Method
    series: MethodSeries
    requires_key: bool
    hook: Hook | None
    admits: bool  # whether calls are checked before they run (a key or a hook)


# Builds a call's CallInfo from what its observer captured when it arrived (`arrival`); called
# once per call, by the writer thread unless the call is checked before it runs. It must only
# read what does not change while the call runs.
Describe = Callable[[MethodState, Any], CallInfo]


class MonitoredCall:
    """One call being recorded: the Observation `begin` returns, and the `LiveCall` queued.

    The event loop writes it (`begin`, `finish`), the writer thread reads it (`record`). The
    two agree without a lock, through the order of two flags under the GIL: `finish` notes the
    outcome, sets `_ended`, then reads `_taken`; `record` sets `_taken`, then reads `_ended`.
    Whichever comes second sees the other's flag, so a call that ended after the writer took
    it as pending is always queued again for its final record."""

    # Class-level defaults instead of __slots__: `__init__` stores only what every call has,
    # five attributes instead of fourteen (the instance dict stays inline, CPython 3.11+).
    _info: CallInfo | None = None
    _client_ip: str | None = None
    _call_id = ""  # drawn by the writer thread, with the first record
    api_key: ApiKey | None = None
    labels: tuple[tuple[str, str], ...] = ()
    _ended = _taken = _final_written = False
    # _code, _message and _elapsed are set by `finish`, `created` with the first record.
    _code: Code
    _message: str
    _elapsed: float
    created: datetime

    def __init__(
        self,
        monitor: Monitor,
        state: MethodState,
        info: CallInfo | None,
        arrival: Any = None,
        describe: Describe | None = None,
    ) -> None:
        self._started = time.perf_counter()  # the wall clock is read by the writer thread
        self.monitor = monitor
        self.state = state
        if info is not None:
            self._info = info
        self._arrival = arrival
        self._describe = describe
        state.series.start()

    @classmethod
    def taken(cls, monitor: Monitor, quick: list[Any], describe: Describe) -> MonitoredCall:
        """The MonitoredCall of a QuickCall, built by the writer thread when it first takes it
        (its metrics were counted by the event loop)."""
        call = cls.__new__(cls)
        call._started = quick[STARTED]
        call.monitor, call.state = monitor, quick[STATE]
        call._arrival, call._describe = quick[ARRIVAL], describe
        return call

    @property
    def info(self) -> CallInfo:
        info = self._info
        if info is None:
            assert self._describe is not None, "a MonitoredCall needs an info or a describe"
            info = self._info = self._describe(self.state, self._arrival)
            self._arrival = None
        return info

    @property
    def client_ip(self) -> str:
        """The peer's address, or the client a trusted proxy forwarded the call for."""
        found = self._client_ip
        if found is None:
            resolve = self.monitor._client_ip
            info = self.info
            found = self._client_ip = info.client_ip if resolve is None else resolve(info)
        return found

    def finish(self, code: Code, message: str = "") -> None:
        if self._ended:
            return
        try:
            elapsed = time.perf_counter() - self._started
            if code.__class__ is not Code:
                code = Code(code)
            self._code, self._message, self._elapsed = code, message, elapsed
            self._ended = True
            if self._taken:  # its pending record is written: queue it again for the final one
                self.monitor.writer.submit(self)
            self.state.series.finish(code, elapsed)
        except Exception:
            self.monitor.fault("finish")

    def record(self) -> CallRecord | None:
        if self._final_written:
            return None
        self._taken = True
        if not self._ended:
            return self._record(CallStatus.PENDING, None, "", "")
        self._final_written = True
        code = self._code
        return self._record(CallStatus.of(code), self._elapsed * 1000.0, code.name, self._message)

    def _record(
        self, status: CallStatus, duration_ms: float | None, code: str, message: str
    ) -> CallRecord:
        call_id = self._call_id or self._draw_call_id()
        info, client_ip, key = self._described(), self._client_ip or "", self.api_key
        return CallRecord(
            call_id=call_id,
            request_id=info.request_id or _uuid_text(call_id),
            service_name=info.service,
            method_name=info.method,
            status=status,
            created_at=self.created,
            duration_ms=duration_ms,
            grpc_status_code=code,
            error_message=message,
            client_ip=client_ip,
            user_id=key.user_id if key is not None else None,
            username=key.username if key is not None else "",
            is_authenticated=key is not None,
            api_key_id=key.id if key is not None else None,
            api_key_name=key.name if key is not None else "",
            transport=info.transport,
            http_method=info.http_method,
            http_path=info.http_path,
            peer=info.peer,
            user_agent=info.user_agent,
            labels=self.labels,
        )

    def _described(self) -> CallInfo:
        """The call's info and client address, however its observer's `describe` fares: a
        call that cannot be described is still recorded, with what its method tells."""
        try:
            self.client_ip  # noqa: B018 (resolves and keeps it)
            return self.info
        except Exception:
            self.monitor.fault("describe")
            state = self.state
            self._info = CallInfo(state.service, state.method, "grpc", "")
            self._client_ip = ""
            return self._info

    def _draw_call_id(self) -> str:
        """The call's id and start time, drawn with its first record (by the writer thread)."""
        started_ago = time.perf_counter() - self._started
        self.created = datetime.fromtimestamp(time.time() - started_ago, timezone.utc)
        self._call_id = CALL_IDS.next()
        return self._call_id


# A QuickCall (model.py), as grpclib's observer queues a call of a method without a key check or
# a hook: [taker, MethodState, arrival, started (perf_counter), ended, taken]. The event loop
# sets `ended` to (code, message, perf_counter) when the call ends, then queues the list again
# if `taken` is set; the writer thread sets `taken` (the MonitoredCall it builds from the list)
# before it reads `ended`: the two flags of MonitoredCall, with the same argument.
STATE, ARRIVAL, STARTED, ENDED, TAKEN = 1, 2, 3, 4, 5
Taker = Callable[[list[Any]], "CallRecord | None"]


def quick_taker(monitor: Monitor, describe: Describe) -> Taker:
    """The function the writer thread calls with a QuickCall: its record, pending or final."""

    def take(quick: list[Any]) -> CallRecord | None:
        call: MonitoredCall = quick[TAKEN]
        if call is None:
            call = quick[TAKEN] = MonitoredCall.taken(monitor, quick, describe)
        ended = quick[ENDED]
        if ended is not None and not call._ended:
            code, message, at = ended
            call._code, call._message, call._elapsed = code, message, at - quick[STARTED]
            call._ended = True
        return call.record()

    return take


class _CallIds:
    """Call ids unique across processes and restarts, at a third of uuid4()'s cost: 64 random
    bits per process (drawn again in a forked child), then a 64-bit counter; 32 hex digits."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()  # next() on it is atomic: no lock across threads

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


CALL_IDS = _CallIds()


def new_request_id() -> str:
    """A request id for a gRPC call that came without one: a call id in UUID form."""
    return _uuid_text(CALL_IDS.next())


def _uuid_text(hex32: str) -> str:
    """32 hex digits in UUID form: 8-4-4-4-12."""
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


class _Unrecorded:
    """The observation of a call the monitor failed to begin: the call goes on, unrecorded."""

    def finish(self, code: Code, message: str = "") -> None:
        return None


UNRECORDED = _Unrecorded()
