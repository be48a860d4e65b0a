"""What the Monitor adds to a call: a trivial unary grpclib call over loopback, with and without.

Four grpclib servers in one process serve the same example service: a plain one, one with a
RecvRequest listener that does nothing (what grpclib's event machinery costs by itself), one
with a Monitor attached through the event (`attach(server)`) and one with the same Monitor
wrapping the handlers (`attach(server, events=False)`); SQLite store, writer thread running.
A grpclib client calls GetShelf on each in turn, the order rotating, and the per-call
latencies are compared pairwise.
Also measures `begin` + `finish` alone, in process (no network): the monitor's hot path.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from grpclib.client import Channel
from grpclib.events import RecvRequest, listen
from grpclib.server import Server

from benchmarks.example_package import generate_example
from benchmarks.results import machine_line, write_section
from examples.bookstore import make_service
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from protoc_gen_restmon.runtime.observe import CallInfo
from protoc_gen_restmon.runtime.status import Code

CALLS = 15_000  # calls on each server
KINDS = ("plain", "listener", "monitored", "handlers")
TARGET_US = 15.0


async def do_nothing(event: RecvRequest) -> None:
    return None


async def serve(pb: ModuleType, kind: str, monitor: Monitor) -> tuple[Server, Channel]:
    server = Server([make_service(pb)])
    if kind == "monitored":
        monitor.attach(server)
    elif kind == "handlers":
        monitor.attach(server, events=False)
    elif kind == "listener":
        listen(server, RecvRequest, do_nothing)
    await server.start("127.0.0.1", 0)
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return server, Channel("127.0.0.1", port)


async def latency(stub: Any, request: Any) -> float:
    start = time.perf_counter()
    await stub.get_shelf(request)
    return time.perf_counter() - start


async def over_loopback(pb: ModuleType, monitor: Monitor) -> dict[str, list[float]]:
    """Per-call latencies on the servers, one call on each per group: the load of a shared
    machine changes from second to second, and the calls of one group see the same."""
    served = {kind: await serve(pb, kind, monitor) for kind in KINDS}
    stubs = {kind: pb.BookstoreServiceStub(channel) for kind, (_, channel) in served.items()}
    request = pb.GetShelfRequest(shelf="fiction")
    results: dict[str, list[float]] = {kind: [] for kind in KINDS}
    try:
        for _ in range(200):  # warm up the connections
            for stub in stubs.values():
                await latency(stub, request)
        for call in range(CALLS):
            shift = call % len(KINDS)
            for kind in KINDS[shift:] + KINDS[:shift]:
                results[kind].append(await latency(stubs[kind], request))
    finally:
        for server, channel in served.values():
            channel.close()
            server.close()
            await server.wait_closed()
    return results


def paired(results: dict[str, list[float]], kind: str, base: str) -> float:
    """Median of the per-group differences, µs."""
    pairs = zip(results[kind], results[base], strict=True)
    return statistics.median(a - b for a, b in pairs) * 1e6


def hot_path(monitor: Monitor, n: int = 20_000) -> float:
    """`begin` + `finish` of one call: CPU time of the calling thread (the writer thread's
    work is not in it), µs, median of batches of 1,000."""
    info = CallInfo(
        "bookstore.v1.BookstoreService",
        "GetShelf",
        "grpc",
        "",
        peer="127.0.0.1:5000",
        client_ip="127.0.0.1",
        user_agent="bench",
    )
    batches = []
    for _ in range(n // 1000):
        start = time.thread_time()
        for _ in range(1000):
            monitor.begin(info).finish(Code.OK)
        batches.append((time.thread_time() - start) / 1000)
        monitor.writer.flush(10)  # keep the queue from filling: drops would look fast
    return statistics.median(batches) * 1e6


def main() -> None:
    start_line = machine_line()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pb = generate_example(root)
        monitor = Monitor(f"sqlite:///{root / 'bench.db'}", packages=[pb])
        try:
            results = asyncio.run(over_loopback(pb, monitor))
            begin_finish = hot_path(monitor)
            stats = monitor.health()
        finally:
            monitor.close()
    body = report(results, begin_finish, stats, start_line)
    write_section("monitor_overhead", body)
    print(body)


def report(
    results: dict[str, list[float]], begin_finish: float, stats: dict[str, Any], start: str
) -> str:
    medians = {kind: statistics.median(results[kind]) * 1e6 for kind in KINDS}

    def row(label: str, kind: str) -> str:
        overhead = paired(results, kind, "plain")
        target = ""
        if kind in ("monitored", "handlers"):
            verdict = "met" if overhead <= TARGET_US else "NOT met"
            target = f" (target ≤ {TARGET_US:.0f}: {verdict})"
        return f"| {label} | {medians[kind]:.1f} | {overhead:+.1f}{target} |"

    return "\n".join(
        [
            "## Monitor overhead: a unary grpclib call over loopback",
            "",
            "`python benchmarks/bench_monitor_overhead.py`: GetShelf on four grpclib servers in",
            "one process: plain, with a do-nothing RecvRequest listener, with a Monitor attached",
            "through the event (`attach(server)`), and with it wrapping the handlers",
            "(`attach(server, events=False)`); SQLite store, writer thread running. "
            f"{CALLS:,} sequential calls on each, one per server in turn, order rotating.",
            start,
            f"Load average {os.getloadavg()[0]:.2f} at the end.",
            "",
            "| server | median latency (µs) | median paired difference to plain (µs) |",
            "|---|---|---|",
            f"| plain grpclib | {medians['plain']:.1f} | |",
            row("do-nothing RecvRequest listener", "listener"),
            row("Monitor, `attach(server)` (RecvRequest event)", "monitored"),
            row("Monitor, `attach(server, events=False)` (handlers wrapped)", "handlers"),
            "",
            "The listener row is what grpclib's event dispatch costs by itself (building the"
            " RecvRequest event, awaiting the listener).",
            f"In process, `begin` + `finish` of one call (the call queued once, metrics counted):"
            f" {begin_finish:.1f} µs of the calling thread's CPU (median of batches of 1,000)."
            f" Records written: {stats['recorded']}, dropped: {stats['dropped']},"
            f" lost: {stats['lost']}.",
        ]
    )


if __name__ == "__main__":
    main()
