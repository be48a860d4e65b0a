"""Hostile clients against real server processes on loopback (issue 17, docs/deployment.md).

Two servers run: `make demo`'s (`examples.serve`, uvicorn's httptools protocol) and `restmon
serve` in front of the demo's gRPC port (h11), each with short bounds and a small descriptor
limit. Each attack runs in a thread for a few seconds while the test, a well-behaved client,
keeps calling; it must keep getting answers no slower than 10x its quiet median, the server's
RSS and open descriptors stay bounded, its log grows by at most LOG_GROWTH bytes, and once the
attack stops everything is as before.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from protoc_gen_restmon.runtime.connections import FD_RESERVE, ConnectionLimits
from protoc_gen_restmon.serve_cli import LIMIT_FLAGS
from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, REPO
from tests.support.servers import free_port

pytestmark = pytest.mark.slow

LIMIT = 96  # --max-connections
# Open descriptors at most, over those before: the connections, and those accepted in one burst
# (the listen backlog, FD_RESERVE / 2) before the first is refused. Attacks hold more than this.
FD_BOUND = LIMIT + FD_RESERVE // 2 + 16
HELD = 4 * LIMIT
NEW_PER_TICK = 16  # connections an attacker opens every 0.05 s
FD_SOFT, FD_HARD = 256, 512  # the servers start with these; they raise soft to hard
BOUNDS = [
    *("--head-timeout", "1", "--keep-alive-timeout", "1", "--body-grace", "1"),
    *("--min-body-rate", "2000", "--max-connections", str(LIMIT)),
]
ATTACK_SECONDS = 1.5
LOG_GROWTH = 4096
SLOWER = 10  # a well-behaved client's median during an attack, at most, times its quiet one
DEEP = b"[" * 20_000 + b"]" * 20_000  # under the admin API's 64 KiB body limit


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def soft_fd_limit(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
        raise AssertionError("no open file limit")


def fd_limit(soft: int, hard: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def start(
    name: str, command: list[str], port: int, log: Path, fds: tuple[int, int] = (FD_SOFT, FD_HARD)
) -> Server:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, preexec_fn=fd_limit(*fds)
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Server(name, process, port, log)
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"{name} did not start: {log.read_text()}")


def stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(timeout=15)


RESTMON = str(Path(sys.executable).with_name("restmon"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    files = [str(PROTOS / name) for name in EXAMPLE_FILES]
    generate = [RESTMON, "generate", "-I", str(PROTOS), "-o", str(root / "gen"), *files]
    subprocess.run(generate, check=True, capture_output=True)
    return root


def demo_command(root: Path, grpc_port: int, http_port: int) -> list[str]:
    command = [sys.executable, "-m", "examples.serve", str(root), *BOUNDS]
    return [*command, "--grpc-port", str(grpc_port), "--http-port", str(http_port)]


@pytest.fixture(scope="module")
def servers(generated: Path) -> Iterator[dict[str, Server]]:
    root = generated
    grpc_port, demo_port, serve_port = free_port(), free_port(), free_port()
    demo = start("demo", demo_command(root, grpc_port, demo_port), demo_port, root / "demo.log")
    demo.token = next(
        line.split("=", 1)[1]
        for line in demo.log.read_text().splitlines()
        if line.strip().startswith("export RESTMON_TOKEN=")
    ).strip()
    serve_command = [RESTMON, "serve", "--upstream", f"127.0.0.1:{grpc_port}", "--package"]
    serve_command += ["gen", "--path", str(root), "--port", str(serve_port), *BOUNDS]
    serve_command += ["--http", "h11", "--log-level", "warning"]
    served = start("restmon serve", serve_command, serve_port, root / "serve.log")
    try:
        yield {"demo": demo, "serve": served}
    finally:
        stop(served)
        stop(demo)


# --- The well-behaved client ------------------------------------------------------------------


# A new connection for each call: one kept alive could be closed to make room, as idle.
CLIENT = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=10)


def probe(server: Server, seconds: float) -> list[float]:
    """Latencies of GET /v1/shelves for `seconds` (one call at least): all must be 200."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while not latencies or time.monotonic() < deadline:
        began = time.perf_counter()
        answer = CLIENT.get(f"{server.url}/v1/shelves")
        latencies.append(time.perf_counter() - began)
        assert answer.status_code == 200, answer.text
    return latencies


@dataclass
class Observed:
    """What the attacker saw: answers (status lines) and connections the server closed."""

    answers: list[bytes] = field(default_factory=list)
    closed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, data: bytes) -> None:
        with self.lock:
            if data:
                self.answers.append(data)
            self.closed += 1


class Stopping(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


Attack = Callable[[Server, Stopping, Observed], None]
# Attackers run in a process of their own: in a thread they would hold the GIL the well-behaved
# client needs, and measure the test, not the server.
FORK = multiprocessing.get_context("fork")


def attacking(attack: Attack, server: Server, stopping: Stopping, results: Any) -> None:
    observed = Observed()
    attack(server, stopping, observed)
    results.put((observed.answers, observed.closed))


def under_attack(server: Server, attack: Attack) -> Observed:
    quiet = statistics.median(probe(server, 0.4))
    fds, rss, log = server.fds(), server.rss_kib(), server.log.stat().st_size
    stopping, results = FORK.Event(), FORK.Queue()
    attacker = FORK.Process(target=attacking, args=(attack, server, stopping, results))
    attacker.start()
    try:
        time.sleep(0.3)
        during: list[float] = []
        peak_fds, peak_rss = 0, 0
        deadline = time.monotonic() + ATTACK_SECONDS
        while time.monotonic() < deadline:
            during += probe(server, 0.2)
            peak_fds, peak_rss = max(peak_fds, server.fds()), max(peak_rss, server.rss_kib())
    finally:
        stopping.set()
        answers, closed = results.get(timeout=15)
        attacker.join(timeout=10)
    assert statistics.median(during) <= SLOWER * quiet, (quiet, sorted(during))
    assert peak_fds <= fds + FD_BOUND, (fds, peak_fds)
    assert peak_rss <= rss + 64 * 1024, (rss, peak_rss)
    back_to_normal(server, fds)
    grown = server.log.stat().st_size - log
    assert grown <= LOG_GROWTH, server.log.read_bytes()[log:][:2000]
    return Observed(answers, closed)


def back_to_normal(server: Server, fds: int) -> None:
    """The attacker's connections gone, the descriptors are as before, and calls are answered."""
    deadline = time.monotonic() + 5
    while server.fds() > fds + 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.fds() <= fds + 4, (fds, server.fds())
    probe(server, 0.1)


# --- Attackers --------------------------------------------------------------------------------


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setblocking(False)
    return sock


def hold(
    server: Server,
    stopping: Stopping,
    observed: Observed,
    count: int,
    first: bytes,
    more: bytes,
) -> None:
    """Keep `count` connections open, each sent `first`, then `more` every 0.2 s; a connection
    the server answers or closes is counted and replaced, at most NEW_PER_TICK at a time (a
    burst of connects from this thread would hold the GIL the well-behaved client needs)."""
    held: list[socket.socket] = []
    try:
        for tick in itertools.count():
            for _ in range(min(NEW_PER_TICK, count - len(held))):
                sock = connect(server)
                with contextlib.suppress(BlockingIOError):
                    sock.send(first)
                held.append(sock)
            for sock in list(held):
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    if more and tick % 4 == 0:
                        with contextlib.suppress(BlockingIOError, OSError):
                            sock.send(more)
                    continue
                except OSError:
                    data = b""
                observed.answer(data)
                held.remove(sock)
                sock.close()
            if stopping.wait(0.05):
                return
    finally:
        for sock in held:
            sock.close()


def slowloris(server: Server, stopping: Stopping, observed: Observed) -> None:
    hold(
        server,
        stopping,
        observed,
        LIMIT // 2,
        b"GET /v1/shelves HTTP/1.1\r\nHost: x\r\n",
        b"X-A: b\r\n",
    )


def silent_beyond_the_limit(server: Server, stopping: Stopping, observed: Observed) -> None:
    hold(server, stopping, observed, HELD, b"", b"")


def trickling_body(server: Server, stopping: Stopping, observed: Observed) -> None:
    head = b"POST /v1/shelves HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
    hold(
        server,
        stopping,
        observed,
        LIMIT // 2,
        head + b"content-length: 1000000\r\n\r\n{",
        b" ",
    )


def header_flood(server: Server, stopping: Stopping, observed: Observed) -> None:
    """Heads far over the size limit: one huge header, then ten thousand small ones."""
    heads = [
        b"GET /v1/shelves HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n",
        b"GET /v1/shelves HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 10_000 + b"\r\n",
    ]
    while not stopping.is_set():
        for head in heads:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                with contextlib.suppress(OSError):
                    sock.sendall(head)
                with contextlib.suppress(OSError):
                    observed.answer(sock.recv(65536))


def nested_json(target: str, token: str = "") -> Attack:
    def attack(server: Server, stopping: Stopping, observed: Observed) -> None:
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        with httpx.Client(timeout=10) as client:
            while not stopping.is_set():
                answer = client.post(f"{server.url}{target}", content=DEEP, headers=headers)
                observed.answer(f"{answer.status_code} {answer.text}".encode())

    return attack


def statuses(observed: Observed) -> set[str]:
    return {answer.split(b"\r\n", 1)[0].decode(errors="replace") for answer in observed.answers}


# --- Tests ------------------------------------------------------------------------------------


SERVERS = ["demo", "serve"]


@pytest.mark.parametrize("name", SERVERS)
def test_slowloris_heads_are_closed_with_408(servers: dict[str, Server], name: str) -> None:
    observed = under_attack(servers[name], slowloris)
    assert observed.closed > 0
    assert statuses(observed) == {"HTTP/1.1 408 Request Timeout"}
    status = json.loads(observed.answers[0].split(b"\r\n\r\n", 1)[1])
    assert status == {
        "code": 4,
        "message": "the request head did not arrive in time",
        "details": [],
    }


@pytest.mark.parametrize("name", SERVERS)
def test_silent_connections_beyond_the_limit_make_room(
    servers: dict[str, Server], name: str
) -> None:
    observed = under_attack(servers[name], silent_beyond_the_limit)
    # Closed without an answer: evicted to make room, or silent past the head timeout.
    assert observed.closed > LIMIT
    assert observed.answers == []


@pytest.mark.parametrize("name", SERVERS)
def test_trickling_bodies_are_closed_with_408(servers: dict[str, Server], name: str) -> None:
    observed = under_attack(servers[name], trickling_body)
    # Below the limit (beyond it, bodies still arriving are closed to make room, oldest first:
    # tests/test_connections.py), each gets a 408 once the grace is over.
    assert observed.closed > 0
    assert statuses(observed) == {"HTTP/1.1 408 Request Timeout"}


@pytest.mark.parametrize("name", SERVERS)
def test_header_floods_are_refused(servers: dict[str, Server], name: str) -> None:
    observed = under_attack(servers[name], header_flood)
    assert observed.answers
    # httptools bounds nothing: ours is a 431; h11's own bound (16 KiB) comes first: a 400.
    expected = (
        "HTTP/1.1 431 Request Header Fields Too Large"
        if name == "demo"
        else "HTTP/1.1 400 Bad Request"
    )
    assert statuses(observed) == {expected}


@pytest.mark.parametrize(
    ("name", "target"),
    [
        pytest.param("demo", "/v1/shelves", id="demo-gateway"),
        pytest.param("serve", "/v1/shelves", id="serve-gateway"),
        pytest.param("demo", "/cfg/grpc/proto-files/generate/", id="demo-admin-generate"),
    ],
)
def test_nested_json_is_a_400(servers: dict[str, Server], name: str, target: str) -> None:
    server = servers[name]
    observed = under_attack(server, nested_json(target, servers["demo"].token))
    assert observed.answers
    for answer in observed.answers:
        status, _, body = answer.decode().partition(" ")
        assert status == "400", answer[:300]
        assert json.loads(body)["code"] == 3
        assert "nested deeper than 100 levels" in json.loads(body)["message"]


@pytest.mark.parametrize("name", SERVERS)
def test_servers_raise_their_descriptor_limit(servers: dict[str, Server], name: str) -> None:
    assert servers[name].soft_fd_limit() == FD_HARD


def test_cli_defaults_are_the_runtime_defaults() -> None:
    defaults = ConnectionLimits()
    assert {name: default for _, name, _, default, *_ in LIMIT_FLAGS} == {
        name: getattr(defaults, name) for name in ConnectionLimits.__dataclass_fields__
    }


def test_accept_loop_out_of_descriptors_logs_once_per_interval(
    generated: Path, tmp_path: Path
) -> None:
    """With 60 descriptors the connection limit is 30, but asyncio accepts up to the backlog at
    once: accept() fails with EMFILE, asyncio reports each to the loop's exception handler
    (once per second of retry) and the first report only carries a traceback."""
    port = free_port()
    command = [*demo_command(generated, free_port(), port), "--db", f"sqlite:///{tmp_path}/x.db"]
    server = start("demo", command, port, tmp_path / "demo.log", fds=(60, 60))
    try:
        fds = server.fds()
        flood: list[socket.socket] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=1))
            if len(flood) > 300:  # the oldest go, as an attacker's would time out
                for sock in flood[:150]:
                    sock.close()
                del flood[:150]
        assert server.fds() <= 60
        for sock in flood:
            sock.close()
        back_to_normal(server, fds)
        log = server.log.read_text()
        assert log.count("Too many open files") <= 1 + 3, log
        assert log.count("Traceback") <= 1, log
        assert len(log.encode()) <= 2 * LOG_GROWTH, log
    finally:
        stop(server)
