"""`restmon serve --workers N`: real worker processes on one port, recording into one store.

A real upstream (tests/support/upstream_process.py, its own process), `restmon serve --workers 2`
as a subprocess with `--db` SQLite or PostgreSQL and API keys required, 50 concurrent clients,
then SIGTERM; then the store is read: one row per call, each key's count exact, and `/metrics`
(prometheus_client's multiprocess mode) sums both workers. Which worker answered is told by the
admin API's health (`pid`: each worker reports its own monitor).

Two sizes: 2,000 calls in all from 50 httpx clients, on every Python; and issue 15's own, 50
clients x 2,000 calls each (100,000), from keep-alive sockets (httpx would spend more CPU than
the gateway), marked slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from protoc_gen_restmon.cli import main
from protoc_gen_restmon.runtime.admin import create_admin_token
from protoc_gen_restmon.runtime.monitor.keys import create_api_key
from protoc_gen_restmon.runtime.monitor.model import CallStatus, KeyType, RequestQuery
from protoc_gen_restmon.runtime.monitor.stores import open_store
from protoc_gen_restmon.runtime.workers import Policy, Supervisor
from tests.support.gateway_fixtures import DUNE, GENERATED
from tests.support.servers import content_length, free_port
from tests.support.upstream_process import UpstreamProcess, package_root

RESTMON = str(Path(sys.executable).with_name("restmon"))
SERVICE = "bookstore.v1.BookstoreService"
WORKERS = 2
CLIENTS = 50
CALLS = 2_000
EACH = 2_000  # calls per client at the size: CLIENTS * EACH in all
RECONNECT = 100  # calls per connection of those clients
KEYS = 5


@pytest.fixture(name="upstream", scope="module")
def fixture_upstream(
    bookstore_pb: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UpstreamProcess]:
    with UpstreamProcess(bookstore_pb, tmp_path_factory.mktemp("upstream") / "events") as process:
        yield process


@dataclass
class Served:
    """A running `restmon serve --workers 2`, its admin token and the API keys' secrets."""

    process: subprocess.Popen[str]
    base: str
    token: str
    keys: dict[str, str]  # name -> secret

    def admin(self, path: str) -> httpx.Response:
        # A new connection each time: the kernel hands it to either worker.
        headers = {"Authorization": f"Bearer {self.token}", "Connection": "close"}
        return httpx.get(f"{self.base}{path}", headers=headers, timeout=10)

    def worker_health(self, wanted: int = WORKERS, timeout: float = 20) -> dict[int, dict]:
        """The health of each worker (by pid), asked until `wanted` different ones answered."""
        found: dict[int, dict] = {}
        deadline = time.monotonic() + timeout
        while len(found) < wanted:
            assert time.monotonic() < deadline, f"only workers {sorted(found)} answered"
            health = self.admin("/api/grpc/monitor/health/").json()
            found[health["pid"]] = health
        return found

    def stop(self) -> str:
        """SIGTERM; the parent's stderr once it has exited 0."""
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, stderr
        assert "Traceback" not in stderr, stderr
        return stderr


def prepared(url: str) -> tuple[str, dict[str, str]]:
    """An admin token and KEYS API keys in the store at `url`."""
    store = open_store(url)
    try:
        _, token = create_admin_token(store, "tests")
        keys = {
            f"key{n}": create_api_key(store, f"key{n}", KeyType.SERVICE)[1] for n in range(KEYS)
        }
    finally:
        store.close()
    return token, keys


@contextlib.contextmanager
def serving(
    pb: ModuleType, upstream: UpstreamProcess, url: str, cwd: Path, *extra: str
) -> Iterator[Served]:
    """`restmon serve --workers 2 --db url --require-key <the Bookstore>` in `cwd`."""
    token, keys = prepared(url)
    port = free_port()
    command = [
        *(RESTMON, "serve", "--upstream", upstream.address, "--log-level", "warning"),
        *("--package", GENERATED, "--path", package_root(pb), "--port", str(port)),
        *("--db", url, "--require-key", SERVICE, "--workers", str(WORKERS), *extra),
    ]
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    served = Served(process, f"http://127.0.0.1:{port}", token, keys)
    try:
        wait_until_serving(served)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_until_serving(served: Served) -> None:
    deadline = time.monotonic() + 30
    while True:
        if served.process.poll() is not None:
            raise AssertionError(f"restmon serve exited: {served.process.communicate()}")
        try:
            served.admin("/api/grpc/monitor/health/")
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "restmon serve did not start listening"
            time.sleep(0.05)


async def load(served: Served, calls: int, clients: int = CLIENTS) -> Counter[str]:
    """`calls` GetBook calls from `clients` concurrent clients (each its own connection pool),
    client i with key i % KEYS; the calls made per key name. Every call must succeed."""
    names = sorted(served.keys)
    made: Counter[str] = Counter()

    async def client(index: int, count: int) -> None:
        name = names[index % len(names)]
        headers = {"x-api-key": served.keys[name]}
        async with httpx.AsyncClient(base_url=served.base, headers=headers, timeout=30) as http:
            for _ in range(count):
                reply = await http.get(f"/v1/{DUNE}")
                assert reply.status_code == 200, reply.text
                made[name] += 1

    shares = [calls // clients + (i < calls % clients) for i in range(clients)]
    await asyncio.gather(*(client(i, share) for i, share in enumerate(shares)))
    return made


def handled_total(served: Served) -> float:
    """grpc_server_handled_total of GetBook, OK, as `/metrics` answers (whichever worker)."""
    reply = served.admin("/metrics")
    assert reply.status_code == 200, reply.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
        if sample.name == "grpc_server_handled_total"
        and sample.labels.get("grpc_method") == "GetBook"
        and sample.labels.get("grpc_code") == "OK"
    )


def eventually(read: Callable[[], float], expected: float, timeout: float = 10) -> float:
    deadline = time.monotonic() + timeout
    while (found := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


async def socket_load(served: Served, each: int, clients: int = CLIENTS) -> Counter[str]:
    """`clients` keep-alive connections making `each` GetBook calls one after another, client
    i with key i % KEYS; the calls made per key name. Every call must succeed. Each client
    opens a new connection every RECONNECT calls: 50 connections opened at once can all be
    accepted by one worker, and the test is of two workers writing one store."""
    names = sorted(served.keys)
    host, port = served.base.removeprefix("http://").split(":")
    made: Counter[str] = Counter()

    async def client(index: int) -> None:
        name = names[index % len(names)]
        request = (
            f"GET /v1/{DUNE} HTTP/1.1\r\nHost: {host}\r\nx-api-key: {served.keys[name]}\r\n\r\n"
        ).encode()
        for start in range(0, each, RECONNECT):
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                for _ in range(min(RECONNECT, each - start)):
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    assert head.startswith(b"HTTP/1.1 200 "), head
                    await reader.readexactly(content_length(head))
                    made[name] += 1
            finally:
                writer.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return made


def stored(
    url: str, calls: int = CALLS
) -> tuple[Counter[str], Counter[CallStatus], dict[str, int]]:
    """The rows per key name and per status, and each key's request_count."""
    store = open_store(url)
    try:
        page = store.requests(RequestQuery(limit=2 * calls))
        keys = {key.name: key.request_count for key in store.keys()}  # noqa: SIM118 (a Store)
    finally:
        store.close()
    assert page.count == len(page.results)
    rows = Counter(row.api_key_name for row in page.results)
    return rows, Counter(row.status for row in page.results), keys


def test_workers_record_every_call_once(
    store_url: str, bookstore_pb: ModuleType, upstream: UpstreamProcess, tmp_path: Path
) -> None:
    """2,000 calls from 50 clients through 2 workers -> rows = calls, key counts exact, both
    workers wrote some, `/metrics` totals = calls (SQLite WAL with two writer processes, and
    PostgreSQL)."""
    with serving(bookstore_pb, upstream, store_url, tmp_path) as served:
        made = asyncio.run(load(served, CALLS))
        assert sum(made.values()) == CALLS
        assert eventually(lambda: handled_total(served), CALLS) == CALLS
        health = served.worker_health()
        assert all(each["recorded"] > 0 for each in health.values()), health
        assert all(each["lost"] == each["dropped"] == 0 for each in health.values()), health
        served.stop()
    rows, statuses, keys = stored(store_url)
    assert rows == made
    assert statuses == {CallStatus.SUCCESS: CALLS}
    assert keys == dict(made)


@pytest.mark.slow
def test_fifty_clients_of_two_thousand_calls_each_are_recorded_once(
    store_url: str, bookstore_pb: ModuleType, upstream: UpstreamProcess, tmp_path: Path
) -> None:
    """Issue 15's proof at its size: 50 clients x 2,000 calls each (100,000) through 2 workers
    -> rows = calls, key counts exact, nothing lost or dropped by either worker's monitor,
    `/metrics` totals = calls."""
    calls = CLIENTS * EACH
    with serving(bookstore_pb, upstream, store_url, tmp_path) as served:
        made = asyncio.run(socket_load(served, EACH))
        assert sum(made.values()) == calls
        assert eventually(lambda: handled_total(served), calls, timeout=30) == calls
        health = served.worker_health()
        assert all(each["recorded"] > 0 for each in health.values()), health
        assert all(each["lost"] == each["dropped"] == 0 for each in health.values()), health
        served.stop()
    rows, statuses, keys = stored(store_url, calls)
    assert rows == made
    assert statuses == {CallStatus.SUCCESS: calls}
    assert keys == dict(made)


def test_a_killed_worker_is_restarted_and_sigterm_drains(
    bookstore_pb: ModuleType, upstream: UpstreamProcess, tmp_path: Path
) -> None:
    """SIGKILL one worker: the parent starts another, serving goes on, and the metrics still
    count what the killed one served (exported before it died). Then calls in flight at
    SIGTERM finish and are recorded before the workers exit."""
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    with serving(bookstore_pb, upstream, url, tmp_path) as served:
        made = asyncio.run(load(served, 100, clients=10))
        assert eventually(lambda: handled_total(served), 100) == 100
        first = served.worker_health()
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        after = served.worker_health()
        assert victim not in after and len(after) == WORKERS, (first, after)
        made += asyncio.run(load(served, 100, clients=10))
        assert eventually(lambda: handled_total(served), 200) == 200

        async def slow_calls() -> list[int]:
            async def one(index: int) -> int:
                headers = {"x-api-key": served.keys["key0"], "Connection": "close"}
                async with httpx.AsyncClient(base_url=served.base, timeout=30) as http:
                    reply = await http.get("/v1/shelves/slow-1000", headers=headers)
                    return reply.status_code

            calls = [asyncio.ensure_future(one(i)) for i in range(8)]
            await asyncio.sleep(0.4)  # all in flight
            served.process.send_signal(signal.SIGTERM)
            return list(await asyncio.gather(*calls))

        # The shelf does not exist: NOT_FOUND, after the upstream's second of sleep.
        assert asyncio.run(slow_calls()) == [404] * 8
        served.process.communicate(timeout=30)
        assert served.process.returncode == 0
    rows, statuses, keys = stored(url)
    assert sum(rows.values()) == 200 + 8
    assert statuses == {CallStatus.SUCCESS: 200, CallStatus.ERROR: 8}
    assert sum(made.values()) == 200
    assert keys["key0"] == made["key0"] + 8


def test_workers_zero_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--upstream", "localhost:1", "--package", GENERATED, "--workers", "0"])
    assert exited.value.code == 2
    assert "--workers: 0: at least 1 worker is needed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--require-key", SERVICE], "--require-key needs --db", id="no-db"),
        pytest.param(
            ["--require-key", "a/b", "--db", "sqlite:///never-opened.db"],
            "--require-key: require_keys: 'a/b' is not package.Service",
            id="bad-scope",
        ),
    ],
)
def test_require_key_usage_errors(
    args: list[str],
    message: str,
    bookstore_pb: ModuleType,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(
            [
                *("serve", "--upstream", "localhost:1", "--package", GENERATED),
                *("--path", package_root(bookstore_pb), *args),
            ]
        )
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never-opened.db").exists()


def test_a_worker_that_dies_at_once_makes_the_supervisor_give_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Real processes that exit 3 as soon as they start: restarted with backoff, then given up
    (status 1, the reason logged), not restarted for ever."""
    exits: list[int] = []
    supervisor = Supervisor(
        command=lambda index: [sys.executable, "-c", "raise SystemExit(3)"],
        count=2,
        policy=Policy(quick=5, give_up_after=3, backoff=0.01),
        on_exit=exits.append,
    )
    began = time.monotonic()
    with caplog.at_level("WARNING", logger="protoc_gen_restmon.runtime.workers"):
        assert supervisor.run() == 1
    assert time.monotonic() - began < 10
    assert "exited with status 3 3 times in a row within 5 s of starting: giving up" in caplog.text
    assert len(exits) >= 3
