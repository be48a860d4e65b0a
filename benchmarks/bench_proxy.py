"""Proxy mode end to end: REST through `restmon serve` to a grpclib server, vs calling it directly.

Three processes on loopback: a grpclib server hosting the example Bookstore (examples/bookstore.py),
`restmon serve` in front of it (uvicorn, proxy mode), and this client.

(a) Latency: sequential unary GetBook, as `GET /v1/shelves/fiction/books/dune` through the
    gateway (a raw keep-alive HTTP/1.1 client on a blocking socket: the least client overhead
    Python has) and as the same call made directly with grpclib, both with betterproto's
    generated stub (what a Python client uses) and with raw bytes (no message decoding: the
    floor). Interleaved rounds; medians and p99 over all rounds; ratio gateway / direct.
(b) Throughput at 50 concurrent connections: wrk -t2 -c50 against the gateway, and 50 asyncio
    tasks each with its own grpclib channel (raw bytes) against the upstream directly.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from grpclib.encoding.base import CodecBase

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.example_package import free_port, generate_example
from benchmarks.results import machine_line, write_section

REPO = Path(__file__).resolve().parent.parent
BOOK = "shelves/fiction/books/dune"
URL_PATH = f"/v1/{BOOK}"
GRPC_PATH = "/bookstore.v1.BookstoreService/GetBook"
ROUNDS, PER_ROUND = 10, 300
CONCURRENCY, SECONDS = 50, 5

UPSTREAM = textwrap.dedent(
    """
    import asyncio, sys
    sys.path[:0] = [{root!r}, {repo!r}]
    from grpclib.server import Server
    import gen.bookstore.v1 as pb
    from examples.bookstore import make_service

    async def main():
        server = Server([make_service(pb)])
        await server.start("127.0.0.1", {port})
        await server.wait_closed()

    asyncio.run(main())
    """
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (/proc/PID/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running(command: list[str], port: int) -> Iterator[int]:
    """`command` as a subprocess (its pid), once it accepts connections on `port`."""
    process = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{command[:3]} did not start") from None
                time.sleep(0.1)
        yield process.pid
    finally:
        process.terminate()
        process.wait(10)


class KeepAliveClient:
    """HTTP/1.1 GETs on one blocking keep-alive connection, bodies read by Content-Length."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def get(self, path: str) -> bytes:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        status = self.file.readline()
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected response: {status!r}")
        length = 0
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return self.file.read(length)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rest_round(port: int, samples: list[float]) -> None:
    """A round on a new connection: uvicorn closes one idle for 5 s (its keep-alive timeout)."""
    client = KeepAliveClient(port)
    try:
        client.get(URL_PATH)  # connected and accepted before timing starts
        for _ in range(PER_ROUND):
            start = time.perf_counter_ns()
            client.get(URL_PATH)
            samples.append((time.perf_counter_ns() - start) / 1000)
    finally:
        client.close()


async def grpc_round(call: Callable[[], Awaitable[Any]], samples: list[float]) -> None:
    for _ in range(PER_ROUND):
        start = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - start) / 1000)


class RawCodec(CodecBase):
    """A grpclib codec passing message bytes through."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return data


def raw_client(pb: ModuleType, port: int) -> tuple[Any, Callable[[], Awaitable[Any]]]:
    """A grpclib channel passing bytes through, and a GetBook call on it."""
    from grpclib.client import Channel, UnaryUnaryMethod

    raw_channel = Channel("127.0.0.1", port, codec=RawCodec())
    raw = UnaryUnaryMethod(raw_channel, GRPC_PATH, bytes, bytes)
    request = bytes(pb.GetBookRequest(name=BOOK))

    async def raw_call() -> Any:
        return await raw(request)

    return raw_channel, raw_call


@dataclass
class Servers:
    upstream_port: int
    upstream_pid: int
    gateway_port: int
    gateway_pid: int
    # CPU seconds each server used during each client's rounds: {"rest": [gateway, upstream]}
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def measured(self, name: str, phase: Callable[[], None]) -> None:
        """Run `phase`, adding the servers' CPU time it cost to `cpu[name]`."""
        before = cpu_seconds(self.gateway_pid), cpu_seconds(self.upstream_pid)
        phase()
        after = cpu_seconds(self.gateway_pid), cpu_seconds(self.upstream_pid)
        total = self.cpu.setdefault(name, [0.0, 0.0])
        for i in range(2):
            total[i] += after[i] - before[i]


def latency(pb: ModuleType, servers: Servers) -> dict[str, list[float]]:
    """Interleaved rounds of sequential calls: REST via the gateway, the stub, raw grpclib."""
    upstream_port = servers.upstream_port
    samples: dict[str, list[float]] = {"rest": [], "stub": [], "raw": []}
    from grpclib.client import Channel

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    raw_channel, raw_call = raw_client(pb, upstream_port)
    stub_channel = Channel("127.0.0.1", upstream_port)
    stub = pb.BookstoreServiceStub(stub_channel)

    async def stub_call() -> Any:
        return await stub.get_book(pb.GetBookRequest(name=BOOK))

    calls = {"stub": stub_call, "raw": raw_call}

    def run(name: str, into: list[float]) -> None:
        if name == "rest":
            rest_round(servers.gateway_port, into)
        else:
            loop.run_until_complete(grpc_round(calls[name], into))

    try:
        for name in samples:  # warm-up, not counted
            run(name, [])
        for _ in range(ROUNDS):
            for name, into in samples.items():
                servers.measured(name, functools.partial(run, name, into))
    finally:
        stub_channel.close()
        raw_channel.close()
        loop.close()
    return samples


def wrk_throughput(port: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONCURRENCY}", f"-d{SECONDS}s", f"http://127.0.0.1:{port}{URL_PATH}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    return float(line.split()[1])


async def direct_throughput(pb: ModuleType, port: int) -> float:
    """Calls/s of 50 asyncio tasks, each calling GetBook in a loop on its own raw channel."""
    clients = [raw_client(pb, port) for _ in range(CONCURRENCY)]
    count = 0
    stop = time.monotonic() + SECONDS

    async def worker(call: Callable[[], Awaitable[Any]]) -> None:
        nonlocal count
        while time.monotonic() < stop:
            await call()
            count += 1

    start = time.monotonic()
    await asyncio.gather(*(worker(call) for _, call in clients))
    elapsed = time.monotonic() - start
    for channel, _ in clients:
        channel.close()
    return count / elapsed


def report(
    samples: dict[str, list[float]],
    cpu: dict[str, list[float]],
    gateway_rps: float,
    direct_rps: float,
) -> str:
    med = {name: statistics.median(values) for name, values in samples.items()}
    p99 = {name: percentile(values, 0.99) for name, values in samples.items()}
    rows = [
        ("REST via `restmon serve` (raw keep-alive HTTP/1.1 client)", "rest"),
        ("direct grpclib, betterproto stub", "stub"),
        ("direct grpclib, raw bytes (no decoding)", "raw"),
    ]
    n = ROUNDS * PER_ROUND
    per_call = {name: [seconds * 1e6 / n for seconds in pair] for name, pair in cpu.items()}
    table = [
        f"| {label} | {med[key]:.0f} | {p99[key]:.0f} | {med['rest'] / med[key]:.2f}x "
        f"| {per_call[key][0]:.0f} | {per_call[key][1]:.0f} |"
        for label, key in rows
    ]
    return "\n".join(
        [
            "## Proxy mode: REST through the gateway vs a direct grpclib call",
            "",
            "`python benchmarks/bench_proxy.py`: unary GetBook on loopback. Upstream: a grpclib",
            "server (one process) hosting examples/bookstore.py; gateway: `restmon serve` (one",
            "uvicorn process, proxy mode, one HTTP/2 channel to the upstream).",
            f"Gateway HTTP stack: uvicorn with {http_stack()}.",
            machine_line(),
            "",
            f"Latency, sequential calls: {ROUNDS} interleaved rounds of {PER_ROUND} calls per",
            f"client ({n:,} each, after a warm-up round), µs.",
            "",
            "| client | median µs | p99 µs | REST / this | gateway CPU µs/call "
            "| upstream CPU µs/call |",
            "|---|---|---|---|---|---|",
            *table,
            "",
            "Wall times on a shared machine move with its other load (the load average above):",
            "the rounds are interleaved so that both paths see the same load, but the REST path",
            "runs three busy processes where the direct one runs two. CPU µs/call: the CPU time",
            "(/proc/PID/stat) each server process used while that client ran, per call.",
            f"The gateway's own cost per REST call: {per_call['rest'][0]:.0f} µs of CPU, where",
            f"the upstream spends {per_call['rest'][1]:.0f} µs on the call.",
            "",
            f"Target: REST / direct ≤ 1.5x. **Measured: {med['rest'] / med['stub']:.2f}x** against",
            f"the betterproto stub, {med['rest'] / med['raw']:.2f}x against raw grpclib. For",
            "scale, grpc-gateway 1.6.4 (Go) measured about 2.7x (245 µs against 90 µs for a",
            "direct grpc-go call). The gateway's call is a second hop: HTTP parsing, routing and",
            "transcoding, then a full grpclib call of its own.",
            "",
            f"Throughput at {CONCURRENCY} concurrent connections, {SECONDS} s:",
            "",
            "| load | requests/s |",
            "|---|---|",
            f"| wrk -t2 -c{CONCURRENCY} → gateway → upstream | {gateway_rps:,.0f} |",
            f"| {CONCURRENCY} asyncio tasks, own raw grpclib channel each → upstream "
            f"| {direct_rps:,.0f} |",
            "",
            "The Python processes share the machine's CPUs with the load generator; wrk is C,",
            "the direct load is generated by Python (grpclib) in one process. grpc-gateway",
            "(Go, multi-core) measured about 23,000 requests/s at 50 concurrent clients.",
        ]
    )


def http_stack() -> str:
    """What uvicorn's "auto" settings pick here: httptools and uvloop when installed."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"{http} and {loop}"


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench_proxy needs wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pb = generate_example(root)
        upstream_port, gateway_port = free_port(), free_port()
        upstream = UPSTREAM.format(root=str(root), repo=str(REPO), port=upstream_port)
        restmon = str(Path(sys.executable).with_name("restmon"))
        serve = [
            *(restmon, "serve", "--upstream", f"127.0.0.1:{upstream_port}"),
            *("--package", "gen", "--path", str(root), "--port", str(gateway_port)),
            *("--log-level", "error"),
        ]
        with (
            running([sys.executable, "-c", upstream], upstream_port) as upstream_pid,
            running(serve, gateway_port) as gateway_pid,
        ):
            servers = Servers(upstream_port, upstream_pid, gateway_port, gateway_pid)
            samples = latency(pb, servers)
            wrk_throughput(gateway_port)  # warm up
            gateway_rps = wrk_throughput(gateway_port)
            direct_rps = asyncio.run(direct_throughput(pb, upstream_port))
    body = report(samples, servers.cpu, gateway_rps, direct_rps)
    write_section("proxy", body)
    print(body)


if __name__ == "__main__":
    main()
