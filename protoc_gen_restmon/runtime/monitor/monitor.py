"""The Monitor: records every call, checks API keys, runs per-method hooks, counts metrics.

One `Monitor` serves any mix of transports: `monitor.attach(server)` for grpclib servers,
`monitor.grpc_aio_interceptor()` for grpc.aio servers, `Gateway(..., monitor=monitor)` for the
REST gateway. Each call is begun (`begin`, which may refuse it) and finished exactly once.

The hot path does as little as it can: `begin` looks up what it knows of the method (metrics
series, key requirement, hook; worked out on the method's first call), reads the clocks and
queues the call itself (one `MonitoredCall`, see `call.py`) for the writer thread, which draws
its id and builds its records; `finish` notes the outcome and counts the metrics. A call knows
the monitor only through its method's `CallSink`; the transport adapters (`grpclib_events`,
`grpc_aio`) only through `call.CallMonitor`, and are imported when attached. Observers
that know their methods in advance (the grpclib ones) take the method's state once
(`method_state`) and call `begin_deferred`, which leaves building the CallInfo to the writer
thread too, unless the call must be checked before it runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import TYPE_CHECKING, Any

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway.observe import GRPC_TYPES, CallInfo, Observation
from protoc_gen_restmon.runtime.gateway.services import GeneratedPackage
from protoc_gen_restmon.runtime.log_redaction import redact_header_logs
from protoc_gen_restmon.runtime.monitor.access import KeyPolicy, TrustedProxies
from protoc_gen_restmon.runtime.monitor.call import (
    UNRECORDED,
    CallSink,
    Describe,
    MethodState,
    MonitoredCall,
    given,
)
from protoc_gen_restmon.runtime.monitor.hooks import CallContext, Hook, ServiceMonitor
from protoc_gen_restmon.runtime.monitor.keys import KeyRejected, KeyVerifier
from protoc_gen_restmon.runtime.monitor.metrics import MonitorMetrics
from protoc_gen_restmon.runtime.monitor.model import ApiKey, KeyUse, Store
from protoc_gen_restmon.runtime.monitor.stores import open_store
from protoc_gen_restmon.runtime.monitor.writer import BatchWriter
from protoc_gen_restmon.runtime.specs import ServiceSpec
from protoc_gen_restmon.runtime.status import Code, RpcError

if TYPE_CHECKING:
    from grpc.aio import ServerInterceptor  # type: ignore[import-untyped]
    from grpclib.server import Server

logger = logging.getLogger(__name__)

FAULT_LOG_INTERVAL = 10.0  # seconds between two logged internal errors of the same kind


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
    - `echo_grpc_request_id`: send each gRPC call's request id back as `x-request-id` in its
      trailing metadata (the gateway always echoes it as a header). Off by default: on grpclib,
      whose HTTP/2 is pure Python, one more trailer with a new value per call costs about 60 µs
      (benchmarks/RESULTS.md), four times the monitor's whole budget.
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
        echo_grpc_request_id: bool = False,
    ) -> None:
        # Configuration first: a mistake there must not leave a store open or a thread running.
        self._policy = KeyPolicy(require_keys)
        proxies = TrustedProxies(trusted_proxies)
        # None without trusted proxies: the client is the peer, nothing to work out per call.
        client_ip: Callable[[CallInfo], str] | None = proxies.client_ip if proxies else None
        self._hooks = _method_hooks(hooks)
        self.echo_grpc_request_id = echo_grpc_request_id
        redact_header_logs()  # the keys it checks travel in HTTP/2 headers
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
        self._sink = CallSink(self.writer.submit, self.fault, client_ip)
        self.started_at = datetime.now(timezone.utc)
        self.internal_errors = 0
        self._keys = KeyVerifier(self.store, cache_seconds=key_cache_seconds)
        try:
            self._metrics = MonitorMetrics(self.writer.stats)
        except ConfigError:  # multiprocess mode asked for too late: nothing left running
            self.writer.close()
            if self._owns_store:
                self.store.close()
            raise
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

    def attach(self, server: Server, *, events: bool = False) -> None:
        """Observe every call of a grpclib server: by wrapping its handlers once, or with
        `events=True` through its RecvRequest event, which costs grpclib's per-call event
        dispatch on top (see `grpclib_events`)."""
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
                state = self.method_state(info.service, info.method, grpc_type or info.grpc_type)
            call = MonitoredCall(state, info, given, time.perf_counter())
            state.series.start()
        except Exception:
            self.fault("begin")
            return UNRECORDED
        return self._started(call)

    def begin_deferred(self, state: MethodState, arrival: Any, describe: Describe) -> Observation:
        """`begin` for an observer that took its method's state beforehand: the CallInfo is
        `describe(state, arrival)`, built by the writer thread unless the call is checked
        before it runs (a key or a hook). `arrival` must not change while the call runs."""
        try:
            call = MonitoredCall(state, arrival, describe, time.perf_counter())
            state.series.start()
        except Exception:
            self.fault("begin")
            return UNRECORDED
        if state.admits:
            return self._started(call)
        self.writer.submit(call)  # `_started` without a check: the common case, inlined
        return call

    def _started(self, call: MonitoredCall) -> Observation:
        """Check the call if its method says so, queue it; raise the RpcError refusing it."""
        try:
            refusal = self._admit(call) if call.state.admits else None
        except Exception:
            self.fault("begin")
            refusal = None
        if refusal is not None:
            call.finish(refusal.code, refusal.message)
            self.writer.submit(call)
            raise refusal
        self.writer.submit(call)
        return call

    def requires_key(self, service: str, path: str) -> bool:
        """Whether calls of `path` (`/pkg.Service/Method`) of `service` need an API key
        (`require_keys`); the gateway's OpenAPI document says so."""
        return self._policy.requires(service, path)

    def method_state(self, service: str, method: str, grpc_type: str = "") -> MethodState:
        """What is known of a method, worked out once (on its first call, or by an observer
        that knows its methods in advance)."""
        found = self._methods.get((service, method))
        if found is not None:
            return found
        path = f"/{service}/{method}"
        kind = grpc_type or self._grpc_types.get(path, "unary")
        requires_key = self._policy.requires(service, path)
        hook = self._hooks.get(path)
        state = self._methods[(service, method)] = MethodState(
            service=service,
            method=method,
            path=path,
            series=self._metrics.series(kind, service, method),
            requires_key=requires_key,
            hook=hook,
            admits=requires_key or hook is not None,
            sink=self._sink,
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
        now = datetime.now(timezone.utc)
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
            # The process answering: with several (restmon serve --workers), each has its own
            # monitor, and the counts below are that process's.
            "pid": os.getpid(),
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

    def in_flight(self) -> int:
        """Calls begun and not yet finished. A call finishes after its last byte is sent, so a
        client can hold the answer of a call that still counts here."""
        running = 0
        for series in self._metrics.all_series():
            started, handled, _, _ = series.snapshot()
            running += started - sum(handled.values())
        return running

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until no call is in flight and every record is written; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.in_flight():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return self.writer.flush(max(0.0, deadline - time.monotonic()))

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
        self._metrics.close()  # after the writer: its last counts are exported too
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
                raise ConfigError(f"Monitor(hooks=...): two hooks for {path}")
            found[path] = hook
    return found
