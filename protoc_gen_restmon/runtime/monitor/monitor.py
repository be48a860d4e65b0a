"""The Monitor: records every call, checks API keys, runs per-method hooks, counts metrics.

One `Monitor` serves any mix of transports: `monitor.attach(server)` for grpclib servers,
`monitor.grpc_aio_interceptor()` for grpc.aio servers, `Gateway(..., monitor=monitor)` for the
REST gateway. Each call is begun (`begin`, which may refuse it) and finished exactly once.

The hot path does as little as it can: `begin` looks up what it knows of the method (metrics
series, key requirement, hook; worked out on the method's first call), reads the clocks and
queues the call itself (one `LiveCall`) for the writer thread, which draws its id and builds
its records; `finish` notes the outcome and counts the metrics.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import TYPE_CHECKING, Any

from protoc_gen_restmon.runtime.monitor.access import KeyPolicy, TrustedProxies
from protoc_gen_restmon.runtime.monitor.hooks import CallContext, Hook, ServiceMonitor
from protoc_gen_restmon.runtime.monitor.keys import KeyRejected, KeyVerifier
from protoc_gen_restmon.runtime.monitor.metrics import GRPC_TYPES, MethodSeries, MonitorMetrics
from protoc_gen_restmon.runtime.monitor.model import ApiKey, CallRecord, CallStatus, KeyUse, Store
from protoc_gen_restmon.runtime.monitor.stores import open_store
from protoc_gen_restmon.runtime.monitor.writer import BatchWriter
from protoc_gen_restmon.runtime.observe import CallInfo, Observation
from protoc_gen_restmon.runtime.services import GeneratedPackage
from protoc_gen_restmon.runtime.specs import ServiceSpec
from protoc_gen_restmon.runtime.status import Code, RpcError

if TYPE_CHECKING:
    from grpc.aio import ServerInterceptor  # type: ignore[import-untyped]
    from grpclib.server import Server

logger = logging.getLogger(__name__)

# A call cancelled this close (seconds) to its deadline ran out of time. A client gives up at
# its deadline and resets the stream; the reset often reaches the server before the server's
# own timer fires, which started later (when the request arrived) and may be late on a busy loop.
DEADLINE_SLACK = 0.5
FAULT_LOG_INTERVAL = 10.0  # seconds between two logged internal errors of the same kind


def cancelled_call(time_remaining: float | None) -> tuple[Code, str]:
    """Why a cancelled handler was cancelled: its deadline passed (the seconds it had left, None
    without a deadline), or the client went away."""
    if time_remaining is not None and time_remaining <= DEADLINE_SLACK:
        return Code.DEADLINE_EXCEEDED, "deadline exceeded"
    return Code.CANCELLED, "cancelled by the client"


class Monitor:
    """Records calls into a store (SQLite by default), checks API keys, exposes metrics.

    - `store`: a URL (`sqlite:///restmon.db`, `postgresql://…`) or an open `Store`.
    - `packages`: generated packages (modules or dotted names) whose services are reported by
      `registered_services()` and whose methods' cardinality labels the metrics.
    - `require_keys`: False, True (every method), or "pkg.Service" / "/pkg.Service/Method"
      entries. Health and reflection services stay public.
    - `trusted_proxies`: IPs or CIDRs whose X-Forwarded-For is believed.
    - `retention`: records older than this are deleted in the background.
    - `hooks`: instances of generated service monitors (`…Monitor(ServiceMonitor)` subclasses).
    """

    def __init__(
        self,
        store: str | Store = "sqlite:///restmon.db",
        *,
        packages: Sequence[ModuleType | str] = (),
        require_keys: bool | Iterable[str] = False,
        trusted_proxies: Iterable[str] = (),
        hooks: Iterable[ServiceMonitor] = (),
        queue_size: int = 10_000,
        retention: timedelta | None = None,
        key_cache_seconds: float = 1.0,
    ) -> None:
        # Configuration first: a mistake there must not leave a store open or a thread running.
        self._policy = KeyPolicy(require_keys)
        proxies = TrustedProxies(trusted_proxies)
        # None without trusted proxies: the client is the peer, nothing to work out per call.
        self._client_ip: Callable[[CallInfo], str] | None = proxies.client_ip if proxies else None
        self._hooks = _method_hooks(hooks)
        self._services: set[str] = set()
        self._grpc_types: dict[str, str] = {}
        self._methods: dict[tuple[str, str], MethodState] = {}  # by (service, method)
        for package in packages:
            self.add_services(GeneratedPackage.load(package).monitor.SERVICES)
        self._owns_store = isinstance(store, str)
        if isinstance(store, str):
            self.store: Store = open_store(store)  # migrated by open_store
        else:
            self.store = store
            self.store.migrate()
        self.writer = BatchWriter(self.store, queue_size=queue_size, retention=retention)
        self.started_at = datetime.now(timezone.utc)
        self.internal_errors = 0
        self._keys = KeyVerifier(self.store, cache_seconds=key_cache_seconds)
        self._metrics = MonitorMetrics(self.writer.stats)
        self._last_fault: dict[str, float] = {}
        self._closed = False

    # --- Registration ---

    def add_services(self, services: Iterable[ServiceSpec]) -> None:
        """Report these services and label their methods' metrics with their cardinality."""
        for service in services:
            self._services.add(service.name)
            for method in service.methods:
                self._grpc_types[method.grpc_path] = GRPC_TYPES[method.cardinality]

    def add_method(self, path: str, grpc_type: str) -> None:
        """One method seen on an attached server (`/pkg.Service/Method`)."""
        self._services.add(path[1:].rpartition("/")[0])
        self._grpc_types[path] = grpc_type

    def attach(self, server: Server, *, events: bool = True) -> None:
        """Observe every call of a grpclib server: through its RecvRequest event, or with
        `events=False` by wrapping its handlers once, which spares grpclib's per-call event
        dispatch (see `grpclib_events`)."""
        from protoc_gen_restmon.runtime.monitor.grpclib_events import attach

        attach(self, server, events=events)

    def grpc_aio_interceptor(self) -> ServerInterceptor:
        """A grpc.aio server interceptor observing every call of the server it is given to."""
        from protoc_gen_restmon.runtime.monitor.grpc_aio import MonitorInterceptor

        return MonitorInterceptor(self)

    # --- Observer ---

    def begin(self, info: CallInfo, grpc_type: str | None = None) -> Observation:
        """Start recording a call; raise RpcError to refuse it (key missing, hook veto).

        `grpc_type` (or `info.grpc_type`) labels the metrics (unary, client_stream, …); when
        not given, it is the one of a known method (`packages`, attached servers) or "unary"."""
        try:
            state = self._methods.get((info.service, info.method))
            if state is None:
                state = self._method(info, grpc_type or info.grpc_type)
            call = MonitoredCall(self, info, state)
            refusal = self._admit(call) if state.admits else None
        except Exception:
            self.fault("begin")
            return UNRECORDED
        if refusal is not None:
            call.finish(refusal.code, refusal.message)
            self.writer.submit(call)
            raise refusal
        self.writer.submit(call)
        return call

    def _method(self, info: CallInfo, grpc_type: str) -> MethodState:
        """What is known of the call's method, worked out on its first call."""
        path = f"/{info.service}/{info.method}"
        kind = grpc_type or self._grpc_types.get(path, "unary")
        requires_key = self._policy.requires(info.service, path)
        hook = self._hooks.get(path)
        state = self._methods[(info.service, info.method)] = MethodState(
            path=path,
            series=self._metrics.series(kind, info.service, info.method),
            requires_key=requires_key,
            hook=hook,
            admits=requires_key or hook is not None,
        )
        return state

    def _admit(self, call: MonitoredCall) -> RpcError | None:
        """The key check, then the method's hook; the RpcError refusing the call, if any."""
        try:
            if call.state.requires_key:
                call.api_key = self._verified_key(call)
            if call.state.hook is not None:
                self._run_hook(call.state.hook, call)
        except RpcError as err:
            return err
        return None

    def _verified_key(self, call: MonitoredCall) -> ApiKey:
        secret = call.info.get("x-api-key")
        now = _utc(call.created)
        try:
            key = self._keys.verify(secret, now)
        except KeyRejected as err:
            raise RpcError(
                Code.UNAUTHENTICATED,
                f"{call.state.path} requires a valid API key (x-api-key): {err}",
            ) from err
        except Exception as err:
            # Fail closed: without the store, a key cannot be told from a revoked one.
            self.fault("key check")
            raise RpcError(Code.UNAVAILABLE, "API keys cannot be checked right now") from err
        self.writer.use_key(KeyUse(key.id, now))
        return key

    def _run_hook(self, hook: Hook, call: MonitoredCall) -> None:
        context = CallContext(call.info, call.client_ip, call.api_key)
        try:
            hook(context)
        except RpcError:
            raise
        except Exception:
            self.fault(f"hook {call.state.path}")
        finally:
            call.labels = tuple(sorted(context.labels.items()))

    def fault(self, where: str) -> None:
        """An error inside the monitor: counted, logged at most every FAULT_LOG_INTERVAL."""
        self.internal_errors += 1
        now = time.monotonic()
        if now - self._last_fault.get(where, -FAULT_LOG_INTERVAL) >= FAULT_LOG_INTERVAL:
            self._last_fault[where] = now
            logger.exception("monitor error in %s (the call goes on)", where)

    # --- Reports ---

    def registered_services(self) -> list[str]:
        return sorted(self._services)

    def health(self) -> dict[str, Any]:
        stats = self.writer.stats()
        degraded = not stats["store_ok"] or stats["lost"] or stats["dropped"]
        return {
            "status": "degraded" if degraded else "healthy",
            "server_running": not self._closed,
            "uptime_seconds": round(
                (datetime.now(timezone.utc) - self.started_at).total_seconds(), 3
            ),
            "registered_services": len(self._services),
            "recorded": stats["recorded"],
            "dropped": stats["dropped"],
            "lost": stats["lost"],
            "queue_depth": stats["queue_depth"],
            "store_ok": stats["store_ok"],
            "internal_errors": self.internal_errors,
        }

    def uptime(self) -> timedelta:
        return datetime.now(timezone.utc) - self.started_at

    def metrics(self) -> bytes:
        """Prometheus text exposition of this monitor's registry."""
        return self._metrics.text()

    # --- Shutdown ---

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most `timeout` seconds), then stop the writer."""
        if self._closed:
            return
        self._closed = True
        self.writer.flush(timeout)
        self.writer.close()
        if self._owns_store:
            self.store.close()

    async def aclose(self, timeout: float = 5.0) -> None:
        await asyncio.to_thread(self.close, timeout)

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _method_hooks(monitors: Iterable[ServiceMonitor]) -> dict[str, Hook]:
    """The overridden hooks of every service monitor, by gRPC path; one per method."""
    found: dict[str, Hook] = {}
    for monitor in monitors:
        for path, hook in monitor.restmon_hooks().items():
            if path in found:
                raise ValueError(f"Monitor(hooks=...): two hooks for {path}")
            found[path] = hook
    return found


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


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


def _uuid_text(hex32: str) -> str:
    """32 hex digits in UUID form: 8-4-4-4-12."""
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


class _Unrecorded:
    """The observation of a call the monitor failed to begin: the call goes on, unrecorded."""

    def finish(self, code: Code, message: str = "") -> None:
        return None


UNRECORDED = _Unrecorded()


@dataclass(frozen=True, slots=True)
class MethodState:
    """What the monitor knows of one method: its metrics, whether it needs a key, its hook."""

    path: str  # /package.Service/Method
    series: MethodSeries
    requires_key: bool
    hook: Hook | None
    admits: bool  # whether calls are checked before they run (a key or a hook)


class MonitoredCall:
    """One call being recorded: the Observation `begin` returns, and the `LiveCall` queued.

    The event loop writes it (`begin`, `finish`), the writer thread reads it (`record`). The
    two agree without a lock, through the order of two flags under the GIL: `finish` notes the
    outcome, sets `_ended`, then reads `_taken`; `record` sets `_taken`, then reads `_ended`.
    Whichever comes second sees the other's flag, so a call that ended after the writer took
    it as pending is always queued again for its final record."""

    __slots__ = (
        "_call_id",
        "_code",
        "_elapsed",
        "_ended",
        "_final_written",
        "_message",
        "_started",
        "_taken",
        "api_key",
        "client_ip",
        "created",
        "info",
        "labels",
        "monitor",
        "state",
    )

    def __init__(self, monitor: Monitor, info: CallInfo, state: MethodState) -> None:
        self._started = time.perf_counter()
        self.created = time.time()  # turned into a datetime by the writer thread
        self.monitor = monitor
        self.info = info
        self.state = state
        self._call_id = ""  # drawn by the writer thread, with the first record
        resolve = monitor._client_ip
        self.client_ip = info.client_ip if resolve is None else resolve(info)
        self.api_key: ApiKey | None = None
        self.labels: tuple[tuple[str, str], ...] = ()
        self._code = Code.OK
        self._message = ""
        self._elapsed = 0.0
        self._ended = self._taken = self._final_written = False
        state.series.start()

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
        info, key = self.info, self.api_key
        call_id = self._call_id or self._draw_call_id()
        return CallRecord(
            call_id=call_id,
            request_id=info.request_id or _uuid_text(call_id),
            service_name=info.service,
            method_name=info.method,
            status=status,
            created_at=_utc(self.created),
            duration_ms=duration_ms,
            grpc_status_code=code,
            error_message=message,
            client_ip=self.client_ip,
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

    def _draw_call_id(self) -> str:
        self._call_id = CALL_IDS.next()
        return self._call_id
