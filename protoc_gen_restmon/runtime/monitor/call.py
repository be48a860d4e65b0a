"""One call in flight (`MonitoredCall`), what the monitor knows of its method, and where it goes.

The event loop builds a `MonitoredCall` when a call arrives and finishes it; the writer thread
turns it into records. Everything that only the record needs is left to the writer thread: the
call id, the datetimes, and, for observers that pass the `describe` function of what they
captured rather than a ready `CallInfo` (the grpclib ones), the CallInfo itself: formatting the
peer and copying the metadata is the largest part of the monitor's per-call cost on the event
loop. A call reaches its monitor only through the `CallSink` of its method: nothing here
knows the `Monitor` (monitor.py), which builds both.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from protoc_gen_restmon.runtime.gateway.observe import CallInfo, Observation, new_request_id
from protoc_gen_restmon.runtime.monitor.model import ApiKey, CallRecord, CallStatus, LiveCall
from protoc_gen_restmon.runtime.monitor.series import MethodSeries
from protoc_gen_restmon.runtime.status import Code

if TYPE_CHECKING:
    from protoc_gen_restmon.runtime.monitor.hooks import Hook
    from protoc_gen_restmon.runtime.monitor.writer import BatchWriter


@dataclass(frozen=True, slots=True)
class CallSink:
    """All a call needs of its monitor: the writer's queue, the fault counter, and how the
    client's address is worked out."""

    submit: Callable[[LiveCall], bool]  # queue the call for the writer thread (again once ended)
    fault: Callable[[str], None]  # an error inside the monitor: counted, logged
    client_ip: Callable[[CallInfo], str] | None  # behind trusted proxies; None: the peer's


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
    sink: CallSink  # where its calls go


# Builds a call's CallInfo from what its observer captured when it arrived (`arrival`); called
# once per call, by the writer thread unless the call is checked before it runs. It must only
# read what does not change while the call runs.
Describe = Callable[[MethodState, Any], CallInfo]


def given(state: MethodState, info: CallInfo) -> CallInfo:
    """The `describe` of an observer that has the CallInfo ready: its arrival is the info."""
    return info


class MonitoredCall:
    """One call in flight: the Observation a monitor's `begin…` returns, and the `LiveCall` its
    writer thread takes, pending or final. Every observer's calls have this one shape.

    The event loop writes it (`__init__`, `finish`), the writer thread reads it (`record`). The
    two agree without a lock, through the order of two fields under the GIL: when the call
    ends, the loop sets `ended`, then reads `taken`; `record` sets `taken`, then reads `ended`.
    Whichever comes second sees the other's field, so a call that ended after the writer took
    it as pending is always queued again for its final record. grpclib's hot path
    (`grpclib_events._quick`) does `finish`'s part inline, on the same two fields.

    Slotted: `__init__` stores every field either side reads, writer-only ones aside (the call
    id and start time, drawn with the first record)."""

    __slots__ = (
        "_call_id",
        "_client_ip",
        "_final_written",
        "_info",
        "_request_id",
        "api_key",
        "arrival",
        "created",
        "describe",
        "ended",
        "labels",
        "started",
        "state",
        "taken",
    )

    def __init__(
        self, state: MethodState, arrival: Any, describe: Describe, started: float
    ) -> None:
        self.state = state
        self.arrival = arrival  # `describe(state, arrival)` is its CallInfo
        self.describe = describe
        self.started = started  # perf_counter; the wall clock is read by the writer thread
        # (code, message, perf_counter) once it ended; set by the loop, before it reads `taken`.
        self.ended: tuple[Code, str, float] | None = None
        self.taken = False  # set by the writer thread, before it reads `ended`
        self._final_written = False
        self._info: CallInfo | None = None
        self._client_ip: str | None = None
        self.api_key: ApiKey | None = None  # the accepted key (methods that need one)
        self.labels: tuple[tuple[str, str], ...] = ()  # set by the method's hook
        # drawn by the writer thread with the first record (`_draw_call_id`)
        self._call_id: str
        self._request_id: str
        self.created: datetime

    @property
    def info(self) -> CallInfo:
        info = self._info
        if info is None:
            info = self._info = self.describe(self.state, self.arrival)
            self.arrival = None
        return info

    @property
    def client_ip(self) -> str:
        """The peer's address, or the client a trusted proxy forwarded the call for."""
        found = self._client_ip
        if found is None:
            resolve = self.state.sink.client_ip
            info = self.info
            found = self._client_ip = info.client_ip if resolve is None else resolve(info)
        return found

    def finish(self, code: Code, message: str = "") -> None:
        if self.ended is not None:
            return
        try:
            now = time.perf_counter()
            if code.__class__ is not Code:
                code = Code(code)
            self.ended = (code, message, now)
            if self.taken:  # its pending record is written: queue it again for the final one
                self.state.sink.submit(self)
            self.state.series.finish(code, now - self.started)
        except Exception:
            self.state.sink.fault("finish")

    def record(self) -> CallRecord | None:
        """The record to write now: pending, or final once ended; None when the final one is
        written already. Called by the writer thread only."""
        if self._final_written:
            return None
        if not self.taken:  # the first record: only this thread sets `taken`
            self._draw_call_id()
        self.taken = True
        ended = self.ended
        if ended is None:
            return self._record(CallStatus.PENDING, None, "", "")
        self._final_written = True
        code, message, at = ended
        return self._record(CallStatus.of(code), (at - self.started) * 1000.0, code.name, message)

    def _record(
        self, status: CallStatus, duration_ms: float | None, code: str, message: str
    ) -> CallRecord:
        call_id = self._call_id
        info, client_ip, key = self._described(), self._client_ip or "", self.api_key
        return CallRecord(
            call_id=call_id,
            request_id=self._request_id,
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
            state = self.state
            state.sink.fault("describe")
            self._info = CallInfo(state.service, state.method, "grpc", "")
            self._client_ip = ""
            return self._info

    def _draw_call_id(self) -> None:
        """The call's id, start time and request id, drawn with its first record (by the writer
        thread). A call that came without a request id (grpclib's, unless they are echoed; one
        whose describe failed) gets a new one here, dated when the call started."""
        started_ago = time.perf_counter() - self.started
        created = time.time() - started_ago
        self.created = datetime.fromtimestamp(created, timezone.utc)
        self._call_id = CALL_IDS.next()
        given = self._described().request_id
        self._request_id = given or new_request_id(int(created * 1000))


class CallMonitor(Protocol):
    """What a transport adapter (`grpclib_events`, `grpc_aio`) uses of the Monitor."""

    echo_grpc_request_id: bool
    writer: BatchWriter

    def add_method(self, path: str, grpc_type: str) -> None: ...

    def method_state(self, service: str, method: str, grpc_type: str = "") -> MethodState: ...

    def begin(self, info: CallInfo, grpc_type: str | None = None) -> Observation: ...

    def begin_deferred(
        self, state: MethodState, arrival: Any, describe: Describe
    ) -> Observation: ...


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


class _Unrecorded:
    """The observation of a call the monitor failed to begin: the call goes on, unrecorded."""

    def finish(self, code: Code, message: str = "") -> None:
        return None


UNRECORDED = _Unrecorded()
