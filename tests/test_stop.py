"""A clean stop on SIGTERM and SIGINT (runtime/serving.py), for `make demo`'s server
(`python -m examples.serve ROOT`) and `restmon serve`, as real processes, over SQLite and
PostgreSQL.

Each test makes N calls, fast ones and slow ones (gRPC and REST client streams whose client
holds them open), sends the signal right after the last fast answer, while the slow ones are
still in flight, then checks that the process exits 0 within the grace, that every slow call
either finished (its client releases it after the signal) or was cancelled at the end of the
grace, and that every one of the N calls is in the database with its final status (found by
the x-request-id each call carries). SQLite's WAL must be checkpointed away.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from grpclib.client import Channel
from grpclib.exceptions import GRPCError, StreamTerminatedError

from protoc_gen_restmon.runtime.monitor.model import CallStatus, RequestQuery
from protoc_gen_restmon.runtime.monitor.stores import open_store
from tests.support.gateway_fixtures import GENERATED
from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, REPO
from tests.support.servers import free_port
from tests.support.upstream_process import UpstreamProcess, package_root
from tests.test_demo import read_token

pytestmark = pytest.mark.slow  # real processes and real graces: seconds each

RESTMON = str(Path(sys.executable).with_name("restmon"))
MARGIN = 5.0  # seconds a loaded machine may add to the grace before the process is gone
PROBE = "probe"  # the request id of the call that finds the server listening
STEP = 0.05  # seconds between two lines of a held client stream


@pytest.fixture(name="demo_root", scope="module")
def fixture_demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example protos generated as `make demo` does: ROOT/gen."""
    root = tmp_path_factory.mktemp("demo")
    files = [str(PROTOS / name) for name in EXAMPLE_FILES]
    subprocess.run(
        [RESTMON, "generate", "-I", str(PROTOS), "-o", str(root / "gen"), *files],
        check=True,
        capture_output=True,
    )
    return root


@pytest.fixture(name="upstream", scope="module")
def fixture_upstream(
    bookstore_pb: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UpstreamProcess]:
    """The gRPC server `restmon serve` proxies to, in its own process (never stopped here)."""
    with UpstreamProcess(bookstore_pb, tmp_path_factory.mktemp("up") / "events.log") as upstream:
        yield upstream


# --- The server under test ---


@dataclass
class Running:
    process: subprocess.Popen[str]
    base: str  # http://127.0.0.1:PORT
    grpc_port: int = 0  # the demo's gRPC port; 0 for restmon serve
    token: str = ""  # the demo's admin token

    def wait_in_flight(self, *request_ids: str) -> None:
        """Until the demo's monitor has each call as `pending` (its admin API): the call
        is running in the server, not just sent."""
        url = f"{self.base}/api/grpc/monitor/requests/"
        headers = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + 10
        while True:
            answer = httpx.get(url, params={"limit": 1000}, headers=headers, timeout=5)
            assert answer.status_code == 200, answer.text
            pending = {
                r["request_id"] for r in answer.json()["results"] if r["status"] == "pending"
            }
            if set(request_ids) <= pending:
                return
            assert time.monotonic() < deadline, f"not in flight: {set(request_ids) - pending}"
            time.sleep(0.05)

    def stop(self, signum: int, within: float) -> float:
        """Send `signum`; the seconds until the process exited, which must be with status 0
        and without a traceback."""
        began = time.monotonic()
        self.process.send_signal(signum)
        self.exited(within)
        return time.monotonic() - began

    def exited(self, within: float) -> None:
        try:
            _, stderr = self.process.communicate(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
            raise AssertionError(f"still running {within} s after the signal: {stderr}") from None
        assert self.process.returncode == 0, stderr
        assert "Traceback" not in stderr, stderr


def start(command: list[str], base: str, grpc_port: int = 0) -> Running:
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    token = read_token(process) if grpc_port else ""
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"exited at start: {process.communicate()}")
        try:
            httpx.get(f"{base}/v1/shelves/fiction", headers={"x-request-id": PROBE}, timeout=1)
            return Running(process, base, grpc_port, token)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError("did not start listening") from None
            time.sleep(0.05)


# --- The calls ---


@dataclass
class Calls:
    """The calls made, by x-request-id: the final code each must be recorded with."""

    expected: dict[str, str] = field(default_factory=lambda: {PROBE: "OK"})  # start()'s
    release: threading.Event = field(default_factory=threading.Event)  # held calls may end
    threads: list[threading.Thread] = field(default_factory=list)
    outcomes: dict[str, object] = field(default_factory=dict)  # what each held client saw
    # Request ids are unique across tests: the upstream's events file is the module's.
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def new_id(self, kind: str) -> str:
        return f"{kind}-{len(self.expected)}-{self.tag}"

    def fast_rest(self, base: str, method: str, path: str, code: str, **kwargs: Any) -> None:
        request_id = self.new_id("rest")
        headers = {"x-request-id": request_id}
        answer = httpx.request(method, f"{base}{path}", headers=headers, timeout=10, **kwargs)
        assert answer.headers["x-request-id"] == request_id
        self.expected[request_id] = code

    def in_thread(self, request_id: str, code: str, work: Any) -> None:
        def run() -> None:
            try:
                self.outcomes[request_id] = work()
            except Exception as err:  # the server went away: what the client saw, checked
                self.outcomes[request_id] = err

        self.expected[request_id] = code
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def held_rest_import(self, base: str, code: str) -> str:
        """POST /v1/books:import whose client keeps its body open until `release` (or for
        ever when `code` is CANCELLED); returns the request id."""
        request_id = self.new_id("rest-held")
        body = held_lines(self.release, forever=code == "CANCELLED")
        headers = {"x-request-id": request_id, "content-type": "application/json"}

        def post() -> object:
            url = f"{base}/v1/books:import"
            return httpx.post(url, content=body, headers=headers, timeout=60).status_code

        self.in_thread(request_id, code, post)
        return request_id

    def held_grpc_import(self, pb: ModuleType, port: int, code: str) -> str:
        """ImportBooks over gRPC, its request stream held open as `held_rest_import`'s body."""
        request_id = self.new_id("grpc-held")
        forever = code == "CANCELLED"

        async def books() -> AsyncIterator[Any]:
            yield pb.Book(name="held-0")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (forever or not self.release.is_set()):
                await asyncio.sleep(0.2 if forever else STEP)
                if forever:
                    yield pb.Book(name="held-more")
            yield pb.Book(name="held-last")

        async def call() -> object:
            channel = Channel("127.0.0.1", port)
            try:
                stub = pb.BookstoreServiceStub(channel)
                reply = await stub.import_books(books(), metadata={"x-request-id": request_id})
                return reply.imported_count
            finally:
                channel.close()

        self.in_thread(request_id, code, lambda: asyncio.run(call()))
        return request_id

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)
            assert not thread.is_alive()


def held_lines(release: threading.Event, *, forever: bool) -> Iterator[bytes]:
    """NDJSON books: one now, then nothing until `release`, then one more; or, `forever`, one
    every 0.2 s until writing fails (for 30 s at most)."""
    yield b'{"name": "held-0"}\n'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (forever or not release.is_set()):
        time.sleep(0.2 if forever else STEP)
        if forever:
            yield b'{"name": "held-more"}\n'
    yield b'{"name": "held-last"}\n'


async def fast_grpc(pb: ModuleType, port: int, calls: Calls) -> None:
    """Three unary calls over gRPC (one failing NOT_FOUND), each with its x-request-id."""
    channel = Channel("127.0.0.1", port)
    stub = pb.BookstoreServiceStub(channel)
    cases = [
        (stub.get_book, pb.GetBookRequest(name="shelves/fiction/books/dune"), "OK"),
        (stub.list_shelves, pb.ListShelvesRequest(), "OK"),
        (stub.get_shelf, pb.GetShelfRequest(shelf="nowhere"), "NOT_FOUND"),
    ]
    try:
        for method, request, code in cases:
            request_id = calls.new_id("grpc")
            calls.expected[request_id] = code
            try:
                await method(request, metadata={"x-request-id": request_id})
            except GRPCError as err:
                assert err.status.name == code
    finally:
        channel.close()


def fast_rest(base: str, calls: Calls) -> None:
    calls.fast_rest(base, "GET", "/v1/shelves", "OK")
    calls.fast_rest(base, "GET", "/v1/shelves/fiction/books/dune", "OK")
    calls.fast_rest(base, "GET", "/v1/shelves/nowhere", "NOT_FOUND")
    calls.fast_rest(base, "POST", "/v1/shelves/fiction/books", "OK", json={"title": "Solaris"})


# --- What the database holds afterwards ---


def recorded(url: str) -> dict[str, tuple[CallStatus, str]]:
    """(status, code) of every call in the database, by request id."""
    store = open_store(url)
    try:
        page = store.requests(RequestQuery(limit=1000))
    finally:
        store.close()
    return {r.request_id: (r.status, r.grpc_status_code) for r in page.results}


def assert_every_call_recorded(url: str, calls: Calls) -> None:
    if url.startswith("sqlite:///"):
        # Checked before the store is opened again (which makes a WAL of its own).
        wal = Path(url.removeprefix("sqlite:///") + "-wal")
        assert not wal.exists(), "the SQLite WAL was not checkpointed"
    rows = recorded(url)
    assert {rid: code for rid, (_, code) in rows.items()} == calls.expected
    assert all(status is not CallStatus.PENDING for status, _ in rows.values())
    cancelled = {rid for rid, (status, _) in rows.items() if status is CallStatus.CANCELLED}
    assert cancelled == {rid for rid, code in calls.expected.items() if code == "CANCELLED"}


def stop_and_check(running: Running, calls: Calls, signum: int, grace: float) -> float:
    """Send `signum`; the held calls are released 0.3 s later (they end within the grace)
    unless they are the CANCELLED kind. The seconds the process took to exit."""
    threading.Timer(0.3, calls.release.set).start()
    took = running.stop(signum, within=grace + MARGIN)
    calls.join()
    return took


# --- make demo's server ---


def start_demo(root: Path, db: str, grace: float) -> Running:
    grpc_port, http_port = free_port(), free_port()
    command = [sys.executable, "-m", "examples.serve", str(root), "--db", db]
    command += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    command += ["--grace", str(grace)]
    return start(command, f"http://127.0.0.1:{http_port}", grpc_port)


@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGTERM, id="SIGTERM"),
        pytest.param(signal.SIGINT, id="SIGINT"),
    ],
)
def test_demo_finishes_calls_in_flight_and_records_all(
    demo_root: Path, bookstore_pb: ModuleType, store_url: str, signum: int
) -> None:
    if signum == signal.SIGINT and not store_url.startswith("sqlite"):
        pytest.skip("SIGINT once is enough")
    running = start_demo(demo_root, store_url, grace=10)
    calls = Calls()
    held = [
        calls.held_rest_import(running.base, "OK"),
        calls.held_grpc_import(bookstore_pb, running.grpc_port, "OK"),
    ]
    running.wait_in_flight(*held)
    fast_rest(running.base, calls)
    asyncio.run(fast_grpc(bookstore_pb, running.grpc_port, calls))
    assert not any(rid in calls.outcomes for rid in held), "a held call ended too early"
    took = stop_and_check(running, calls, signum, grace=10)
    assert took < 10
    assert calls.outcomes[held[0]] == 200  # the answer came after the signal
    assert calls.outcomes[held[1]] == 2  # held-0, held-last
    assert_every_call_recorded(store_url, calls)
    assert len(calls.expected) == 10


def test_demo_cancels_calls_at_the_end_of_the_grace(
    demo_root: Path, bookstore_pb: ModuleType, store_url: str
) -> None:
    running = start_demo(demo_root, store_url, grace=1)
    calls = Calls()
    held = [
        calls.held_rest_import(running.base, "CANCELLED"),
        calls.held_grpc_import(bookstore_pb, running.grpc_port, "CANCELLED"),
    ]
    running.wait_in_flight(*held)
    fast_rest(running.base, calls)
    asyncio.run(fast_grpc(bookstore_pb, running.grpc_port, calls))
    took = stop_and_check(running, calls, signal.SIGTERM, grace=1)
    assert 1 <= took < 1 + MARGIN
    assert calls.outcomes[held[0]] == 503  # UNAVAILABLE: the server is shutting down
    # grpclib sends no status for a call it cancels: the client sees the connection go.
    assert isinstance(calls.outcomes[held[1]], StreamTerminatedError)
    assert_every_call_recorded(store_url, calls)


def test_demo_refuses_new_calls_then_a_second_signal_cancels_at_once(
    demo_root: Path, bookstore_pb: ModuleType, tmp_path: Path
) -> None:
    """During the grace, a gRPC call on a connection still open gets UNAVAILABLE and a new
    HTTP connection is refused; a second SIGTERM cancels the held calls long before the
    grace (30 s) is over."""
    db = f"sqlite:///{tmp_path / 'monitor.db'}"
    running = start_demo(demo_root, db, grace=30)
    calls = Calls()
    running.wait_in_flight(
        calls.held_rest_import(running.base, "CANCELLED"),
        calls.held_grpc_import(bookstore_pb, running.grpc_port, "CANCELLED"),
    )

    async def on_one_connection() -> None:
        channel = Channel("127.0.0.1", running.grpc_port)
        stub = bookstore_pb.BookstoreServiceStub(channel)
        try:
            request_id = calls.new_id("grpc")
            calls.expected[request_id] = "OK"
            await stub.list_shelves(
                bookstore_pb.ListShelvesRequest(), metadata={"x-request-id": request_id}
            )
            running.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            with pytest.raises(GRPCError) as refused:
                await stub.list_shelves(bookstore_pb.ListShelvesRequest())
            assert refused.value.status.name == "UNAVAILABLE"
            assert refused.value.message == "the server is shutting down"
        finally:
            channel.close()

    asyncio.run(on_one_connection())
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.base}/v1/shelves")
    began = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    running.exited(within=MARGIN)
    assert time.monotonic() - began < MARGIN
    calls.join()
    assert_every_call_recorded(db, calls)  # the refused call is not among them


# --- restmon serve ---


def start_serve(pb: ModuleType, upstream: UpstreamProcess, db: str, grace: float) -> Running:
    port = free_port()
    command = [RESTMON, "serve", "--upstream", upstream.address, "--log-level", "warning"]
    command += ["--package", GENERATED, "--path", package_root(pb), "--port", str(port)]
    command += ["--db", db, "--grace", str(grace)]
    return start(command, f"http://127.0.0.1:{port}")


def slow_get(calls: Calls, base: str, upstream: UpstreamProcess, ms: int, code: str) -> str:
    """GET /v1/shelves/slow-MS: the upstream takes that long to answer; returns once the
    upstream has the call."""
    request_id = calls.new_id("rest-slow")
    headers = {"x-request-id": request_id}
    url = f"{base}/v1/shelves/slow-{ms}"
    calls.in_thread(request_id, code, lambda: httpx.get(url, headers=headers, timeout=60))
    upstream.wait_for(f"start GetShelf {request_id}", timeout=10)
    return request_id


@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGTERM, id="SIGTERM"),
        pytest.param(signal.SIGINT, id="SIGINT"),
    ],
)
def test_serve_finishes_calls_in_flight_and_records_all(
    bookstore_pb: ModuleType, upstream: UpstreamProcess, store_url: str, signum: int
) -> None:
    if signum == signal.SIGINT and not store_url.startswith("sqlite"):
        pytest.skip("SIGINT once is enough")
    running = start_serve(bookstore_pb, upstream, store_url, grace=10)
    calls = Calls()
    slow = slow_get(calls, running.base, upstream, 2500, "NOT_FOUND")  # no shelf slow-2500
    held = calls.held_rest_import(running.base, "OK")
    upstream.wait_for(f"start ImportBooks {held}", timeout=10)
    fast_rest(running.base, calls)
    assert f"done GetShelf {slow}" not in upstream.lines(), "the slow call ended too early"
    took = stop_and_check(running, calls, signum, grace=10)
    assert took < 10
    assert f"done GetShelf {slow}" in upstream.lines()
    assert getattr(calls.outcomes[slow], "status_code", None) == 404
    assert calls.outcomes[held] == 200
    assert_every_call_recorded(store_url, calls)
    assert len(calls.expected) == 7


def test_serve_cancels_calls_at_the_end_of_the_grace(
    bookstore_pb: ModuleType, upstream: UpstreamProcess, store_url: str
) -> None:
    running = start_serve(bookstore_pb, upstream, store_url, grace=1)
    calls = Calls()
    slow = slow_get(calls, running.base, upstream, 30_000, "CANCELLED")
    held = calls.held_rest_import(running.base, "CANCELLED")
    upstream.wait_for(f"start ImportBooks {held}", timeout=10)
    fast_rest(running.base, calls)
    took = stop_and_check(running, calls, signal.SIGTERM, grace=1)
    assert 1 <= took < 1 + MARGIN
    upstream.wait_for(f"cancelled GetShelf {slow}")  # the upstream call was cancelled too
    assert_every_call_recorded(store_url, calls)


def test_serve_on_a_port_in_use_exits_3_with_its_store_closed(
    bookstore_pb: ModuleType, tmp_path: Path
) -> None:
    """uvicorn cannot start: its status (3) as `uvicorn.run` gave it, no traceback, and the
    monitor opened before is closed all the same."""
    db = tmp_path / "monitor.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [RESTMON, "serve", "--upstream", "127.0.0.1:1", "--log-level", "warning"]
        command += ["--package", GENERATED, "--path", package_root(bookstore_pb)]
        command += ["--port", str(port), "--db", f"sqlite:///{db}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stderr
    assert "address already in use" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert db.is_file() and not Path(f"{db}-wal").exists()
