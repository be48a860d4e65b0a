"""What the Monitor adds to a call: a trivial unary grpclib call over loopback, with and without.

Two grpclib servers in one process serve the same example service; one has a Monitor attached
(SQLite store, writer thread running). A grpclib client calls GetShelf on each in interleaved
rounds (the order alternating), and the medians of the per-call latencies are compared. Also
measures `begin` + `finish` alone, in process (no network), which is the monitor's hot path.
"""

from __future__ import annotations

import asyncio
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from grpclib.client import Channel
from grpclib.server import Server

from benchmarks.results import machine_line, write_section
from examples.bookstore import make_service
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from protoc_gen_restmon.runtime.observe import CallInfo
from protoc_gen_restmon.runtime.status import Code

REPO = Path(__file__).resolve().parent.parent
CALLS = 20_000  # pairs of calls
TARGET_US = 15.0


def generate(root: Path) -> ModuleType:
    protos = sorted(str(p) for p in (REPO / "protos").rglob("*.proto"))
    restmon = Path(sys.executable).with_name("restmon")
    command = [str(restmon), "generate", "-I", str(REPO / "protos"), "-o", str(root / "gen")]
    subprocess.run([*command, *protos], check=True)
    sys.path.insert(0, str(root))
    return importlib.import_module("gen.bookstore.v1")


async def serve(pb: ModuleType, monitor: Monitor | None) -> tuple[Server, Channel]:
    server = Server([make_service(pb)])
    if monitor is not None:
        monitor.attach(server)
    await server.start("127.0.0.1", 0)
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return server, Channel("127.0.0.1", port)


async def latency(stub: Any, request: Any) -> float:
    start = time.perf_counter()
    await stub.get_shelf(request)
    return time.perf_counter() - start


async def over_loopback(pb: ModuleType, monitor: Monitor) -> dict[str, list[float]]:
    """Per-call latencies on both servers, calls paired: the load of a shared machine changes
    from second to second, and both calls of a pair see the same."""
    plain_server, plain = await serve(pb, None)
    monitored_server, monitored = await serve(pb, monitor)
    stubs = {
        "plain": pb.BookstoreServiceStub(plain),
        "monitored": pb.BookstoreServiceStub(monitored),
    }
    request = pb.GetShelfRequest(shelf="fiction")
    results: dict[str, list[float]] = {"plain": [], "monitored": []}
    try:
        for _ in range(200):  # warm up both connections
            for stub in stubs.values():
                await latency(stub, request)
        for call in range(CALLS):
            order = ("plain", "monitored") if call % 2 == 0 else ("monitored", "plain")
            for kind in order:
                results[kind].append(await latency(stubs[kind], request))
    finally:
        for channel in (plain, monitored):
            channel.close()
        for server in (plain_server, monitored_server):
            server.close()
            await server.wait_closed()
    return results


def hot_path(monitor: Monitor, n: int = 20_000) -> float:
    """`begin` + `finish` of one call, in µs (median of batches of 1,000)."""
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
        start = time.perf_counter()
        for _ in range(1000):
            monitor.begin(info).finish(Code.OK)
        batches.append((time.perf_counter() - start) / 1000)
        monitor.writer.flush(10)  # keep the queue from filling: drops would look fast
    return statistics.median(batches) * 1e6


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pb = generate(root)
        monitor = Monitor(f"sqlite:///{root / 'bench.db'}", packages=[pb])
        try:
            results = asyncio.run(over_loopback(pb, monitor))
            begin_finish = hot_path(monitor)
            stats = monitor.health()
        finally:
            monitor.close()
    plain = statistics.median(results["plain"]) * 1e6
    monitored = statistics.median(results["monitored"]) * 1e6
    pairs = zip(results["monitored"], results["plain"], strict=True)
    paired = statistics.median(m - p for m, p in pairs) * 1e6
    body = "\n".join(
        [
            "## Monitor overhead: a unary grpclib call over loopback",
            "",
            "`python benchmarks/bench_monitor_overhead.py`: GetShelf on two grpclib servers in",
            "one process, one with a Monitor attached (SQLite store, writer thread running);",
            f"{CALLS:,} pairs of sequential calls, one on each server, order alternating.",
            machine_line(),
            "",
            "| server | median latency (µs) |",
            "|---|---|",
            f"| plain grpclib | {plain:.1f} |",
            f"| with Monitor | {monitored:.1f} |",
            f"| difference of the medians | {monitored - plain:+.1f} |",
            f"| median of the paired differences | {paired:+.1f} (target ≤ {TARGET_US:.0f}) |",
            "",
            f"In process, `begin` + `finish` of one call (two records queued, metrics counted):"
            f" {begin_finish:.1f} µs (median of batches of 1,000). Records written: "
            f"{stats['recorded']}, dropped: {stats['dropped']}, lost: {stats['lost']}.",
        ]
    )
    write_section("monitor_overhead", body)
    print(body)


if __name__ == "__main__":
    main()
