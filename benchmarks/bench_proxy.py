"""Proxy mode end to end: REST through `restmon serve` to a grpclib server, vs calling it directly.

Processes on loopback: a grpclib server hosting the example Bookstore (examples/bookstore.py),
`restmon serve` in front of it (uvicorn, proxy mode), and this client; with `--before GIT_REF`, a
second `restmon serve` running the package as it was at that commit (git archive), measured in
the same run, interleaved with this tree's: a before/after on a loaded machine.

(a) Latency: sequential unary GetBook, as `GET /v1/shelves/fiction/books/dune` through the
    gateway (a raw keep-alive HTTP/1.1 client on a blocking socket: the least client overhead
    Python has) and as the same call made directly with grpclib, both with betterproto's
    generated stub (what a Python client uses) and with raw bytes (no message decoding: the
    floor), and raw bytes on a grpc.aio channel (the gateway's own kind). Interleaved rounds;
    medians and p99 over all rounds; ratio gateway / direct.
(b) Throughput at 50 concurrent connections: wrk -t2 -c50 against each gateway (A B B A), and 50
    asyncio tasks each with its own grpclib channel (raw bytes) against the upstream directly.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import importlib.util
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from grpclib.encoding.base import CodecBase

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.example_package import free_port, generate_example
from benchmarks.harness import cpu_seconds, percentile, running, wrk
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


def aio_client(pb: ModuleType, port: int) -> tuple[Any, Callable[[], Awaitable[Any]]]:
    """A grpcio (grpc.aio, C-core) channel passing bytes through, and a GetBook call on it:
    the gateway's own kind of channel, as the floor of a direct call."""
    import grpc.aio

    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    method = channel.unary_unary(GRPC_PATH)
    request = bytes(pb.GetBookRequest(name=BOOK))

    async def call() -> Any:
        return await method(request)

    return channel, call


@dataclass
class Servers:
    upstream_pid: int
    upstream_port: int
    # Each gateway: its REST client name ("rest", "rest_before") -> (pid, port).
    gateways: dict[str, tuple[int, int]]
    # CPU seconds each process used during each client's rounds: {client: {process: seconds}}.
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)

    def pids(self) -> dict[str, int]:
        return {"upstream": self.upstream_pid, **{k: v[0] for k, v in self.gateways.items()}}

    def measured(self, name: str, phase: Callable[[], None]) -> None:
        """Run `phase`, adding the CPU time it cost each server to `cpu[name]`."""
        before = {process: cpu_seconds(pid) for process, pid in self.pids().items()}
        phase()
        total = self.cpu.setdefault(name, {})
        for process, pid in self.pids().items():
            total[process] = total.get(process, 0.0) + cpu_seconds(pid) - before[process]


def latency(pb: ModuleType, servers: Servers) -> dict[str, list[float]]:
    """Interleaved rounds of sequential calls: REST via each gateway, then direct calls (the
    betterproto stub, raw grpclib, raw grpc.aio)."""
    upstream_port = servers.upstream_port
    samples: dict[str, list[float]] = {name: [] for name in servers.gateways}
    samples |= {"stub": [], "raw": [], "aio": []}
    from grpclib.client import Channel

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    raw_channel, raw_call = raw_client(pb, upstream_port)
    aio_channel, aio_call = aio_client(pb, upstream_port)
    stub_channel = Channel("127.0.0.1", upstream_port)
    stub = pb.BookstoreServiceStub(stub_channel)

    async def stub_call() -> Any:
        return await stub.get_book(pb.GetBookRequest(name=BOOK))

    calls = {"stub": stub_call, "raw": raw_call, "aio": aio_call}

    def run(name: str, into: list[float]) -> None:
        if name in servers.gateways:
            rest_round(servers.gateways[name][1], into)
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
        loop.run_until_complete(aio_channel.close())
        loop.close()
    return samples


def wrk_throughput(port: int) -> float:
    url = f"http://127.0.0.1:{port}{URL_PATH}"
    return wrk(url, threads=2, connections=CONCURRENCY, seconds=SECONDS)[0]


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


LABELS = {
    "rest": "REST via `restmon serve`, this tree (grpc.aio upstream channel)",
    "rest_before": "REST via `restmon serve` at {before} (grpclib upstream channel)",
    "stub": "direct grpclib, betterproto stub",
    "raw": "direct grpclib, raw bytes (no decoding)",
    "aio": "direct grpc.aio, raw bytes (no decoding)",
}


def report(
    samples: dict[str, list[float]],
    servers: Servers,
    gateway_rps: dict[str, float],
    direct_rps: float,
    before: str | None,
) -> str:
    med = {name: statistics.median(values) for name, values in samples.items()}
    p99 = {name: percentile(values, 0.99) for name, values in samples.items()}
    n = ROUNDS * PER_ROUND
    cpu = {name: {k: v * 1e6 / n for k, v in per.items()} for name, per in servers.cpu.items()}

    def gateway_cpu(name: str) -> str:
        return f"{cpu[name][name]:.0f}" if name in servers.gateways else "—"

    table = [
        f"| {LABELS[key].format(before=before)} | {med[key]:.0f} | {p99[key]:.0f} "
        f"| {med['rest'] / med[key]:.2f}x | {gateway_cpu(key)} | {cpu[key]['upstream']:.0f} |"
        for key in samples
    ]
    throughput = [
        f"| wrk -t2 -c{CONCURRENCY} → {LABELS[name].format(before=before)[9:]} → upstream "
        f"| {rps:,.0f} |"
        for name, rps in gateway_rps.items()
    ]
    lines = [
        "## Proxy mode: REST through the gateway vs a direct call",
        "",
        "`python benchmarks/bench_proxy.py" + (f" --before {before}`" if before else "`") + ":",
        "unary GetBook on loopback. Upstream: a grpclib server (one process) hosting",
        "examples/bookstore.py; gateway: `restmon serve` (one uvicorn process, proxy mode,",
        "one channel to the upstream)."
        + (
            f" With `--before`, a second gateway runs the package source of {before}"
            " (git archive), measured in the same run, interleaved with this tree's."
            if before
            else ""
        ),
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
        "The machine is shared and loaded (the load average above): compare ratios within",
        "this run, not figures across runs. CPU µs/call: the CPU time (/proc/PID/stat) each",
        "server process used while that client ran, per call.",
        "",
        f"Throughput at {CONCURRENCY} concurrent connections, {SECONDS} s per wrk run"
        + (" (each gateway twice,\nA B B A; the mean):" if before else ":"),
        "",
        "| load | requests/s |",
        "|---|---|",
        *throughput,
        f"| {CONCURRENCY} asyncio tasks, own raw grpclib channel each → upstream "
        f"| {direct_rps:,.0f} |",
    ]
    if before and "rest_before" in samples:
        after_cpu, before_cpu = cpu["rest"]["rest"], cpu["rest_before"]["rest_before"]
        lines += [
            "",
            f"**This tree against {before}, same run:** sequential median latency "
            f"{med['rest'] / med['rest_before']:.2f}x,",
            f"p99 {p99['rest'] / p99['rest_before']:.2f}x; gateway CPU per sequential call "
            f"{after_cpu / before_cpu:.2f}x; throughput at {CONCURRENCY} connections "
            f"{gateway_rps['rest'] / gateway_rps['rest_before']:.2f}x.",
        ]
    return "\n".join(lines)


def http_stack() -> str:
    """What uvicorn's "auto" settings pick here: httptools and uvloop when installed."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"{http} and {loop}"


def gateway_command(source: Path, root: Path, upstream_port: int, port: int) -> list[str]:
    """`restmon serve` from `source` (its `protoc_gen_restmon` first on sys.path)."""
    start = (
        f"import sys; sys.path.insert(0, {str(source)!r}); "
        "from protoc_gen_restmon.cli import main; sys.exit(main())"
    )
    return [
        *(sys.executable, "-c", start, "serve", "--upstream", f"127.0.0.1:{upstream_port}"),
        *("--package", "gen", "--path", str(root), "--port", str(port)),
        *("--log-level", "error"),
    ]


def checkout(ref: str, into: Path) -> Path:
    """The package source at git `ref` (git archive), to run the gateway as it was."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "protoc_gen_restmon"], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def throughput(servers: Servers) -> dict[str, float]:
    """wrk against each gateway: warmed up, then A B B A, the mean of each one's two runs."""
    names = list(servers.gateways)
    for name in names:
        wrk_throughput(servers.gateways[name][1])  # warm up
    order = names + names[::-1]
    runs: dict[str, list[float]] = {name: [] for name in names}
    for name in order:
        runs[name].append(wrk_throughput(servers.gateways[name][1]))
    return {name: statistics.mean(values) for name, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--before",
        metavar="GIT_REF",
        help="also run `restmon serve` as of this commit, measured in the same run",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_proxy needs wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        pb = generate_example(root)
        upstream_port = free_port()
        upstream = UPSTREAM.format(root=str(root), repo=str(REPO), port=upstream_port)
        sources = {"rest": REPO}
        if args.before:
            sources["rest_before"] = checkout(args.before, root / "before")
        upstream_pid = stack.enter_context(running([sys.executable, "-c", upstream], upstream_port))
        gateways = {}
        for name, source in sources.items():
            port = free_port()
            command = gateway_command(source, root, upstream_port, port)
            gateways[name] = (stack.enter_context(running(command, port)), port)
        servers = Servers(upstream_pid, upstream_port, gateways)
        samples = latency(pb, servers)
        gateway_rps = throughput(servers)
        direct_rps = asyncio.run(direct_throughput(pb, upstream_port))
    body = report(samples, servers, gateway_rps, direct_rps, args.before)
    write_section("proxy", body)
    print(body)


if __name__ == "__main__":
    main()
