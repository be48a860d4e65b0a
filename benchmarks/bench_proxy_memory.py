"""Proxy-mode memory: the gateway process's RSS while it proxies a long server stream.

A real upstream (tests/support/upstream_process.py, its own process) streams N `ShelfEvent`s of ~0.5
KiB through a real gateway (uvicorn, its own process) to an httpx client, twice: a fast client
reading as fast as it can (the baseline), then a slow client reading at half the rate the fast
one achieved. The gateway's VmRSS is sampled every 10 ms. A gateway that read the stream ahead
of its client would grow with the stream in the slow run; one that keeps to HTTP/2 flow control
grows by about the same bounded amount in both runs.

    python benchmarks/bench_proxy_memory.py [--messages 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from benchmarks.example_package import generate_example  # noqa: E402
from benchmarks.results import machine_line, write_section  # noqa: E402
from tests.support.upstream_process import GatewayProcess, Process, UpstreamProcess  # noqa: E402

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Run:
    idle_kib: int
    peak_kib: int
    seconds: float
    received: int  # bytes

    @property
    def growth_mib(self) -> float:
        return (self.peak_kib - self.idle_kib) / 1024

    @property
    def rate(self) -> float:
        return self.received / self.seconds


def sample_peak(process: Process, done: threading.Event, peak: list[int]) -> None:
    while not done.is_set():
        peak[0] = max(peak[0], process.rss_kib())
        time.sleep(0.01)


def stream(gateway: GatewayProcess, messages: int, rate: float | None) -> Run:
    """Read the whole stream; at most `rate` bytes per second when given."""
    idle = gateway.rss_kib()
    peak, done = [idle], threading.Event()
    sampler = threading.Thread(target=sample_peak, args=(gateway, done, peak))
    sampler.start()
    url = f"{gateway.url}/v1/shelves/many:watch?maxEvents={messages}"
    received, tail, began = 0, b"", time.monotonic()
    try:
        with httpx.stream("GET", url, timeout=600) as response:
            for chunk in response.iter_raw(CHUNK):
                received, tail = received + len(chunk), (tail + chunk)[-1000:]
                if rate is not None:  # sleep until this many bytes are due
                    time.sleep(max(0.0, received / rate - (time.monotonic() - began)))
    finally:
        done.set()
        sampler.join()
    if b'{"error"' in tail:
        raise SystemExit(f"the stream failed: {tail[-300:]!r}")
    return Run(idle, peak[0], time.monotonic() - began, received)


def row(name: str, run: Run) -> str:
    return (
        f"| {name} | {run.received / 2**20:.0f} MiB | {run.rate / 2**20:.1f} MiB/s "
        f"| {run.idle_kib / 1024:.1f} MiB | {run.peak_kib / 1024:.1f} MiB "
        f"| {run.growth_mib:.1f} MiB |"
    )


def share(run: Run) -> str:
    return f"{run.growth_mib * 2**20 / run.received:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pb = generate_example(Path(tmp))
        upstream = UpstreamProcess(pb, Path(tmp) / "events.log")
        gateway = GatewayProcess(pb, upstream.address, deadline=0)  # streams take minutes
        upstream.start()
        gateway.start()
        try:
            stream(gateway, 1000, None)  # warm up: imports, first connection
            fast = stream(gateway, args.messages, None)
            slow = stream(gateway, args.messages, fast.rate / 2)
        finally:
            gateway.stop()
            upstream.stop()
    body = "\n".join(
        [
            "## Proxy mode: gateway memory on a long server stream",
            "",
            f"`python benchmarks/bench_proxy_memory.py`: {args.messages:,} `ShelfEvent`s",
            "(~0.5 KiB each) from a grpclib upstream process, through the gateway (uvicorn, its",
            "own process), as NDJSON to an httpx client; the gateway's VmRSS sampled every 10 ms.",
            "The slow client reads at half the fast client's rate.",
            machine_line(),
            "",
            "| client | streamed | read rate | gateway RSS idle | peak | growth |",
            "|---|---|---|---|---|---|",
            row("fast", fast),
            row("slow (half rate)", slow),
            "",
            f"Peak RSS growth as a share of the bytes streamed: fast {share(fast)}, slow "
            f"**{share(slow)}**; slow minus fast: {slow.growth_mib - fast.growth_mib:.1f} MiB. "
            "The gateway reads one upstream message per `send`, which blocks while the client's "
            "socket is full; the upstream channel (grpc.aio) has a fixed HTTP/2 window per "
            "stream (upstream.STREAM_WINDOW, 1 MiB, C-core's BDP probe off), so the upstream "
            "can run at most that far ahead of what the gateway has read.",
        ]
    )
    write_section("proxy_memory", body)
    print(body)


if __name__ == "__main__":
    main()
