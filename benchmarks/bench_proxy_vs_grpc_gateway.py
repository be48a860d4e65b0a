"""restmon's proxy against grpc-gateway: both in front of the same grpc-go upstream.

The Go side is built from Debian's packages in GOPATH mode (no module proxy is reachable):
benchmarks/echo/echo.proto generated with protoc, protoc-gen-go (1.3) and protoc-gen-grpc-gateway
(1.6.4), and three mains from benchmarks/echo/go: the upstream (grpc-go, EchoService), the
gateway (grpc-gateway's runtime.ServeMux on net/http, one grpc-go connection to the upstream)
and the client. The same proto is generated with our plugin for `restmon serve`. Processes on
loopback, sharing the machine's CPUs with the load generator:

- `grpc-gateway`: the Go gateway.
- `restmon`: `restmon serve` (one uvicorn process, httptools and uvloop, proxy mode on its
  default transport, auto: here the asyncio one, HTTP/2 on the event loop), monitoring off.
- `restmon-grpcio`: the same with `--upstream-transport grpcio` (a grpc.aio channel, C-core).
- `restmon-2`: the same with `--workers 2` (two worker processes on one socket; CPU counted
  over the parent and its workers).
- `restmon-sqlite`: `restmon` with `--db sqlite:///…`: every call recorded.
- `direct`: grpc-go calling the upstream itself, the floor of the sequential latency.

(a) Sequential latency: the Go client (benchmarks/echo/go/client: a raw keep-alive HTTP/1.1
    socket for both gateways, grpc-go for the direct call) makes `GET /v1/echo/abc` (GetEcho)
    PER_ROUND times one after another; ROUNDS rounds, the arms taking turns in a rotated order;
    median and p99 over every call of every round. Each gateway's CPU per call: its process's
    user + system time (/proc/PID/stat) during its rounds over the calls.
(b) Throughput: wrk -t2 -c50 against each gateway, WRK_ROUNDS rounds in a rotated order; the
    median of the rounds, and the gateway process's CPU per request during them.
    The floor: benchmarks/grpc_aio_floor.py makes the same upstream calls from one Python
    process on one grpc.aio channel (no HTTP side), 50 at a time, for as long; its CPU per call.
(c) Where the time goes: py-spy samples `restmon serve` (monitoring off) during one more wrk run.

Targets (issue 15, ratios within the run): throughput at 50 connections ≥ 0.35x grpc-gateway's;
sequential median latency ≤ 1.6x grpc-gateway's; the gateway's CPU per request under wrk ≤ 150 µs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.example_package import free_port
from benchmarks.harness import (
    cpu_seconds,
    percentile,
    py_spy,
    running,
    summarize,
    tree_cpu_seconds,
    wrk,
)
from benchmarks.results import machine_line, write_section

REPO = Path(__file__).resolve().parent.parent
ECHO = REPO / "benchmarks" / "echo"
URL_PATH = "/v1/echo/abc"
ROUNDS, PER_ROUND = 10, 300
WRK_ROUNDS, CONCURRENCY, SECONDS = 3, 50, 5
TARGET_THROUGHPUT, TARGET_LATENCY, TARGET_CPU_US = 0.35, 1.6, 150.0

APT = (
    "apt-get install -y golang-go golang-grpc-gateway golang-github-grpc-ecosystem-grpc-gateway-dev"
    " protoc-gen-go-1-3 golang-github-golang-protobuf-1-3-dev golang-google-grpc-dev"
    " golang-google-genproto-dev"
)
GOCODE = Path("/usr/share/gocode/src")
# What the Go build imports from Debian's GOPATH (each package's directory), and the protos.
GO_PACKAGES = [
    "github.com/grpc-ecosystem/grpc-gateway/runtime",
    "github.com/golang/protobuf/proto",
    "google.golang.org/grpc",
    "google.golang.org/genproto/googleapis/api/annotations",
]
GOOGLEAPIS = GOCODE / "github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis"
TOOLS = ["go", "protoc", "protoc-gen-go", "protoc-gen-grpc-gateway", "wrk"]
MAINS = ["upstream", "gateway", "client"]

GATEWAYS = ["grpc-gateway", "restmon", "restmon-grpcio", "restmon-2", "restmon-sqlite"]
FLOOR = "grpc.aio"  # the upstream calls alone, from Python (benchmarks/grpc_aio_floor.py)
LABELS = {
    "grpc-gateway": "grpc-gateway 1.6.4 (Go, net/http)",
    "restmon": "`restmon serve`, monitoring off",
    "restmon-grpcio": "`restmon serve --upstream-transport grpcio`, monitoring off",
    "restmon-2": "`restmon serve --workers 2`, monitoring off",
    "restmon-sqlite": "`restmon serve --db sqlite:///…`",
    "direct": "direct grpc-go call (the floor)",
    FLOOR: "grpc.aio calls alone, no HTTP (a Python gateway's floor)",
}


def missing_toolchain() -> list[str]:
    """The tools and Go packages the build needs that this machine lacks."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    missing += [package for package in GO_PACKAGES if not (GOCODE / package).is_dir()]
    if not (GOOGLEAPIS / "google" / "api" / "annotations.proto").is_file():
        missing.append(str(GOOGLEAPIS / "google/api/annotations.proto"))
    return missing


def go_environment(gopath: Path) -> dict[str, str]:
    """GOPATH mode over Debian's packages (and our private tree first), nothing downloaded."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return {
        **os.environ,
        "GOPATH": f"{gopath}:{GOCODE.parent}",
        "GO111MODULE": "off",
        "GOPROXY": "off",
        "GOFLAGS": "",
        # The build cache outlives the run: a second run links in seconds.
        "GOCACHE": str(cache / "restmon-bench" / "go-build"),
    }


def build_go(root: Path) -> dict[str, Path]:
    """The echo proto generated for Go and the three mains built: {main: binary}."""
    gopath = root / "go"
    package = gopath / "src" / "restmonbench"
    (package / "echo").mkdir(parents=True)
    generate = [
        *("protoc", f"-I{ECHO}", f"-I{GOOGLEAPIS}", "-I/usr/include"),
        f"--go_out=plugins=grpc,paths=source_relative:{package / 'echo'}",
        f"--grpc-gateway_out=logtostderr=true,paths=source_relative:{package / 'echo'}",
        str(ECHO / "echo.proto"),
    ]
    step("protoc (Go)", generate, os.environ.copy())
    env = go_environment(gopath)
    binaries = {}
    for main in MAINS:
        shutil.copytree(ECHO / "go" / main, package / main)
        binaries[main] = gopath / "bin" / main
        build = ["go", "build", "-o", str(binaries[main]), f"restmonbench/{main}"]
        step(f"go build {main}", build, env)
    return binaries


def step(what: str, command: list[str], env: dict[str, str]) -> None:
    """Run a build step; its failure ends the benchmark with its output, not a traceback."""
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{what} failed:\n{done.stdout}{done.stderr}\nThe Go side needs: {APT}")


def generate_restmon(root: Path) -> Path:
    """`restmon generate` of the echo proto into root/py/gen; the directory holding `gen`."""
    out = root / "py"
    restmon = Path(sys.executable).with_name("restmon")
    command = [str(restmon), "generate", "-I", str(ECHO), "-o", str(out / "gen")]
    subprocess.run([*command, str(ECHO / "echo.proto")], check=True)
    return out


def restmon_command(
    path: Path,
    upstream_port: int,
    port: int,
    db: str | None,
    workers: int = 1,
    transport: str = "auto",
) -> list[str]:
    restmon = Path(sys.executable).with_name("restmon")
    command = [str(restmon), "serve", "--upstream", f"127.0.0.1:{upstream_port}"]
    command += ["--package", "gen", "--path", str(path), "--port", str(port)]
    # error: no access log (grpc-gateway writes none either).
    command += ["--log-level", "error"]
    command += ["--workers", str(workers), "--upstream-transport", transport]
    return command + (["--db", db] if db else [])


@dataclass
class Arms:
    client: Path
    upstream: tuple[int, int]  # (pid, port)
    gateways: dict[str, tuple[int, int]]
    rounds: int = ROUNDS
    wrk_rounds: int = WRK_ROUNDS
    seconds: int = SECONDS
    # Per arm: every sequential call's latency (µs), the gateway's and the upstream's CPU
    # seconds during the arm's rounds, and the calls they served.
    latency: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    # Per gateway and wrk round: requests/s, and the gateway's CPU µs per request.
    rates: dict[str, list[float]] = field(default_factory=dict)
    wrk_cpu: dict[str, list[float]] = field(default_factory=dict)

    def sequential(self, arm: str, n: int) -> list[float]:
        """n sequential calls of the Go client (after one warm-up call), µs each."""
        if arm == "direct":
            command = ["grpc", f"127.0.0.1:{self.upstream[1]}", "abc"]
        else:
            command = ["http", f"127.0.0.1:{self.gateways[arm][1]}", URL_PATH]
        out = subprocess.run(
            [str(self.client), *command, str(n)], capture_output=True, text=True, check=True
        ).stdout
        return [float(line) for line in out.split()]

    def latency_round(self, arm: str) -> None:
        pids = {"upstream": self.upstream[0]}
        if arm in self.gateways:
            pids["gateway"] = self.gateways[arm][0]
        before = {name: _cpu(name, pid) for name, pid in pids.items()}
        self.latency.setdefault(arm, []).extend(self.sequential(arm, PER_ROUND))
        spent = self.cpu.setdefault(arm, {})
        for name, pid in pids.items():
            spent[name] = spent.get(name, 0.0) + _cpu(name, pid) - before[name]
        self.calls[arm] += PER_ROUND + 1  # and the warm-up call

    def floor_round(self) -> None:
        """grpc.aio alone: CONCURRENCY concurrent calls from one Python process, its CPU/call."""
        floor = Path(__file__).with_name("grpc_aio_floor.py")
        args = [str(self.upstream[1]), str(self.seconds), str(CONCURRENCY)]
        out = subprocess.run(
            [sys.executable, str(floor), *args], capture_output=True, text=True, check=True
        ).stdout
        result = json.loads(out)
        self.rates.setdefault(FLOOR, []).append(result["calls"] / self.seconds)
        self.wrk_cpu.setdefault(FLOOR, []).append(result["cpu_seconds"] / result["calls"] * 1e6)

    def wrk_round(self, arm: str) -> None:
        pid, port = self.gateways[arm]
        before = tree_cpu_seconds(pid)
        rate, requests = wrk(f"http://127.0.0.1:{port}{URL_PATH}", 2, CONCURRENCY, self.seconds)
        self.rates.setdefault(arm, []).append(rate)
        self.wrk_cpu.setdefault(arm, []).append((tree_cpu_seconds(pid) - before) / requests * 1e6)


def _cpu(process: str, pid: int) -> float:
    """A gateway's CPU seconds, its workers' included; the upstream's own."""
    return tree_cpu_seconds(pid) if process == "gateway" else cpu_seconds(pid)


def rotated(arms: list[str], n: int) -> list[str]:
    return arms[n % len(arms) :] + arms[: n % len(arms)]


def check_answers(arms: Arms) -> None:
    """Both kinds of gateway answer GET and POST with the same JSON before anything is timed."""
    import httpx

    body = {"id": "x", "message": "m", "count": "3", "tags": ["t"]}
    answers: dict[str, tuple[object, object]] = {}
    for name, (_, port) in arms.gateways.items():
        base = f"http://127.0.0.1:{port}"
        got = httpx.get(base + URL_PATH)
        posted = httpx.post(base + "/v1/echo", json=body)
        if got.status_code != 200 or posted.status_code != 200:
            sys.exit(f"{name}: GET {got.status_code}, POST {posted.status_code}: {posted.text}")
        answers[name] = (got.json(), posted.json())
    if len({repr(answer) for answer in answers.values()}) != 1:
        sys.exit(f"the gateways answer differently: {answers}")


# Where a sample's time goes: the leaf-most frame that one of these matches (file or module),
# so that a native frame counts for the library that called it (clock_gettime under cygrpc is
# gRPC's). Waiting in the kernel is left out of the shares (see WAITING).
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("gRPC: grpc.aio and C-core (cygrpc, its poller thread)", ("cygrpc", "grpc/")),
    (
        "gRPC: the asyncio transport (h2wire, loop_upstream, hpack)",
        ("gateway/h2wire", "gateway/loop_upstream", "hpack/"),
    ),
    ("uvicorn and httptools (HTTP/1.1)", ("uvicorn/", "httptools")),
    ("monitoring (our runtime/monitor, sqlite3)", ("runtime/monitor/", "sqlite3")),
    ("JSON and upb messages (our jsoncodec, upb)", ("runtime/jsoncodec/", "_upb", "protobuf/")),
    ("routing, transcoding, the gateway (our code)", ("protoc_gen_restmon/",)),
    ("event loop (uvloop, asyncio)", ("uvloop", "asyncio/", "contextvars")),
]
WAITING = ("epoll_wait", "epoll_pwait", "poll (", "futex", "select (", "pthread_cond")


def group_samples(collapsed: str) -> tuple[list[tuple[str, float]], float]:
    """(group, % of the busy samples) by GROUPS, and the % of all samples spent waiting."""
    shares: collections.Counter[str] = collections.Counter()
    waiting = total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        if _waiting(line):
            waiting += int(count)
            continue
        shares[_group(frames)] += int(count)
    busy = max(1, total - waiting)
    rows = [(name, 100 * count / busy) for name, count in shares.most_common()]
    return rows, 100 * waiting / max(1, total)


def _waiting(line: str) -> bool:
    return line.rpartition(" ")[0].rpartition(";")[2].startswith(WAITING)


def _group(frames: list[str]) -> str:
    for frame in reversed(frames):
        where = frame.partition(" (")[2]
        for name, markers in GROUPS:
            if any(marker in where for marker in markers):
                return name
    return "the interpreter, libc, other"


def profile(arms: Arms, out: Path) -> str:
    """py-spy's samples of `restmon serve` (monitoring off) under wrk, grouped and per function."""
    pid, port = arms.gateways["restmon"]
    spying = py_spy(pid, arms.seconds, out)
    # The load outlasts the recording: py-spy takes a moment to attach.
    wrk(f"http://127.0.0.1:{port}{URL_PATH}", 2, CONCURRENCY, arms.seconds + 1)
    spying.wait(60)
    collapsed = out.read_text()
    groups, waiting = group_samples(collapsed)
    busy = "\n".join(line for line in collapsed.splitlines() if not _waiting(line))
    rows = ["| where | share of the busy samples |", "|---|---|"]
    rows += [f"| {name} | {share:.1f} % |" for name, share in groups]
    return "\n".join(
        [
            *rows,
            "",
            f"({waiting:.0f} % of all samples were threads waiting in epoll_wait/futex, left out.)",
            "",
            "Per Python function, busy samples (native frames count for the Python frame",
            "calling them):",
            "",
            summarize(busy, top=25),
        ]
    )


def report(arms: Arms, profiled: str | None) -> str:
    med = {arm: statistics.median(values) for arm, values in arms.latency.items()}
    p99 = {arm: percentile(values, 0.99) for arm, values in arms.latency.items()}

    def per_call(arm: str, process: str) -> str:
        spent = arms.cpu[arm].get(process)
        return "—" if spent is None else f"{spent * 1e6 / arms.calls[arm]:.0f}"

    base = "grpc-gateway"
    latency_rows = [
        f"| {LABELS[arm]} | {med[arm]:.0f} | {p99[arm]:.0f} | {med[arm] / med[base]:.2f}x "
        f"| {p99[arm] / p99[base]:.2f}x | {per_call(arm, 'gateway')} "
        f"| {per_call(arm, 'upstream')} |"
        for arm in [*GATEWAYS, "direct"]
    ]
    rate = {arm: statistics.median(values) for arm, values in arms.rates.items()}
    cpu = {arm: statistics.median(values) for arm, values in arms.wrk_cpu.items()}

    def spread(values: list[float]) -> str:
        return f"{min(values):,.0f} … {max(values):,.0f}"

    throughput_rows = [
        f"| {LABELS[arm]} | {rate[arm]:,.0f} ({spread(arms.rates[arm])}) "
        f"| {rate[arm] / rate[base]:.2f}x | {cpu[arm]:.0f} ({spread(arms.wrk_cpu[arm])}) |"
        for arm in [*GATEWAYS, FLOOR]
    ]

    def verdict(ok: bool) -> str:
        return "**pass**" if ok else "**fail**"

    targets = []
    for arm in ("restmon", "restmon-grpcio", "restmon-2", "restmon-sqlite"):
        ratio, slower = rate[arm] / rate[base], med[arm] / med[base]
        targets.append(
            f"| {LABELS[arm]} | {ratio:.2f}x {verdict(ratio >= TARGET_THROUGHPUT)} "
            f"| {slower:.2f}x {verdict(slower <= TARGET_LATENCY)} "
            f"| {cpu[arm]:.0f} µs {verdict(cpu[arm] <= TARGET_CPU_US)} |"
        )
    lines = [
        "## Proxy mode against grpc-gateway, in front of the same grpc-go upstream",
        "",
        "`python benchmarks/bench_proxy_vs_grpc_gateway.py`: `GET /v1/echo/abc` (GetEcho of",
        "benchmarks/echo/echo.proto, a 65-byte JSON answer) through grpc-gateway 1.6.4 and",
        "`restmon serve`, both in front of one grpc-go upstream; Debian bookworm's Go packages",
        "(go 1.19, grpc-go 1.33, golang/protobuf 1.3), built by the benchmark in GOPATH mode.",
        "`restmon serve`: one uvicorn process (httptools, uvloop), its default upstream",
        "transport (auto: here the asyncio one, HTTP/2 on the event loop; the grpcio row:",
        "a grpc.aio channel),",
        "`--log-level error` (no access log; grpc-gateway writes none). Everything, the load",
        "generator too, shares the machine's CPUs with other work: compare the ratios, which",
        "come from one run with the arms interleaved, not the figures across runs.",
        machine_line(),
        "",
        f"Sequential latency: {arms.rounds} rounds of {PER_ROUND} calls per arm, rotated order,",
        "the same Go client for both gateways (a raw keep-alive HTTP/1.1 socket; grpc-go for",
        "the direct call); median and p99 over all calls. CPU µs/call: user + system time of",
        "the process (/proc/PID/stat) during the arm's rounds over its calls.",
        "",
        "| arm | median µs | p99 µs | median / grpc-gateway | p99 / grpc-gateway "
        "| gateway CPU µs/call | upstream CPU µs/call |",
        "|---|---|---|---|---|---|---|",
        *latency_rows,
        "",
        f"Throughput: wrk -t2 -c{CONCURRENCY}, {arms.seconds} s, {arms.wrk_rounds} rounds",
        "in a rotated order; the median round (min … max). CPU µs/request: the gateway",
        "process's (and its workers') CPU time during the wrk run over the requests it served.",
        f"The {FLOOR} row is no gateway: one Python process making the same upstream calls from",
        f"{CONCURRENCY} tasks on one grpc.aio channel (raw bytes, uvloop), with no HTTP side,",
        "for as long; its CPU per call is what any Python gateway on grpc.aio spends before",
        "it reads a request or writes a response.",
        "",
        "| gateway | requests/s | / grpc-gateway | gateway CPU µs/request |",
        "|---|---|---|---|",
        *throughput_rows,
        "",
        f"Targets: throughput ≥ {TARGET_THROUGHPUT}x grpc-gateway's, sequential median latency "
        f"≤ {TARGET_LATENCY}x, gateway CPU ≤ {TARGET_CPU_US:.0f} µs per request under wrk.",
        "",
        "| arm | throughput | latency | CPU per request |",
        "|---|---|---|---|",
        *targets,
    ]
    if profiled:
        lines += [
            "",
            "Where `restmon serve`'s time goes (monitoring off): py-spy --native at 250 Hz during",
            f"one more wrk -c{CONCURRENCY} run; each sample counts for the leaf-most frame",
            "of a known library (a native frame for the library calling it).",
            "",
            profiled,
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="sequential rounds")
    parser.add_argument("--wrk-rounds", type=int, default=WRK_ROUNDS)
    parser.add_argument("--seconds", type=int, default=SECONDS, help="of each wrk run")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy run")
    parser.add_argument("--profile", type=Path, help="keep py-spy's collapsed stacks here")
    args = parser.parse_args()
    missing = missing_toolchain()
    if missing:
        sys.exit(
            "bench_proxy_vs_grpc_gateway needs Debian's Go toolchain and grpc-gateway packages "
            f"(missing: {', '.join(missing)}):\n  {APT}\n(and wrk: apt-get install wrk)"
        )
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        print("building the Go upstream, grpc-gateway and client …", flush=True)
        binaries = build_go(root)
        py_root = generate_restmon(root)
        upstream_port = free_port()
        upstream = [str(binaries["upstream"]), str(upstream_port)]
        upstream_pid = stack.enter_context(running(upstream, upstream_port))
        gateways: dict[str, tuple[int, int]] = {}
        commands: dict[str, Callable[[int], list[str]]] = {
            "grpc-gateway": lambda port: [
                *(str(binaries["gateway"]), str(port), f"127.0.0.1:{upstream_port}")
            ],
            "restmon": lambda port: restmon_command(py_root, upstream_port, port, None),
            "restmon-grpcio": lambda port: restmon_command(
                py_root, upstream_port, port, None, transport="grpcio"
            ),
            "restmon-2": lambda port: restmon_command(py_root, upstream_port, port, None, 2),
            "restmon-sqlite": lambda port: restmon_command(
                py_root, upstream_port, port, f"sqlite:///{root / 'monitor.db'}"
            ),
        }
        for name in GATEWAYS:
            port = free_port()
            gateways[name] = (stack.enter_context(running(commands[name](port), port)), port)
        arms = Arms(binaries["client"], (upstream_pid, upstream_port), gateways)
        arms.rounds, arms.wrk_rounds, arms.seconds = args.rounds, args.wrk_rounds, args.seconds
        check_answers(arms)
        latency_arms = [*GATEWAYS, "direct"]
        for arm in latency_arms:
            arms.sequential(arm, PER_ROUND)  # warm-up, not counted
        for n in range(arms.rounds):
            for arm in rotated(latency_arms, n):
                arms.latency_round(arm)
            print(f"latency round {n + 1}/{arms.rounds}", flush=True)
        for name in GATEWAYS:
            wrk(f"http://127.0.0.1:{gateways[name][1]}{URL_PATH}", 2, CONCURRENCY, 1)  # warm-up
        for n in range(arms.wrk_rounds):
            for arm in rotated([*GATEWAYS, FLOOR], n):
                arms.floor_round() if arm == FLOOR else arms.wrk_round(arm)
                print(f"wrk round {n + 1} {arm}: {arms.rates[arm][-1]:,.0f} req/s", flush=True)
        profiled = None
        if not args.no_profile:
            profiled = profile(arms, args.profile or root / "profile.txt")
    body = report(arms, profiled)
    print(body)
    if not args.no_write:
        write_section("proxy_vs_grpc_gateway", body)


if __name__ == "__main__":
    main()
