"""Proxy mode when things go wrong, with real processes: the upstream killed and restarted, a
deadline, an HTTP client that goes away, a client too slow for its stream.

The upstream is `python -m tests.support.upstream_process serve` (its handlers log `start`/`done`/
`cancelled` per request id); the gateway runs under uvicorn, in a thread of this process (to
see its observer) or in its own process (to measure its memory).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.connections import ConnectionLimits
from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions, UpstreamOptions
from protoc_gen_restmon.runtime.gateway.http import Exchange
from protoc_gen_restmon.runtime.gateway.observe import CallInfo
from protoc_gen_restmon.runtime.status import Code
from tests.support.servers import uvicorn_server
from tests.support.upstream_process import GatewayProcess, UpstreamProcess

pytestmark = pytest.mark.timeout(60)


@dataclass
class Recorder:
    """An observer keeping how each call ended: (request id, code)."""

    ended: list[tuple[str, Code]] = field(default_factory=list)

    def begin(self, info: CallInfo) -> Any:
        recorder = self

        class Finish:
            def finish(self, code: Code, message: str = "") -> None:
                recorder.ended.append((info.request_id, code))

        return Finish()

    def wait_for(self, request_id: str, timeout: float = 5.0) -> Code:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            for ended_id, code in self.ended:
                if ended_id == request_id:
                    return code
            time.sleep(0.01)
        raise AssertionError(f"{request_id} never finished: {self.ended}")


@pytest.fixture(name="upstream")
def fixture_upstream(bookstore_pb: ModuleType, tmp_path: Path) -> Iterator[UpstreamProcess]:
    upstream = UpstreamProcess(bookstore_pb, tmp_path / "events.log")
    upstream.start()
    try:
        yield upstream
    finally:
        upstream.stop()


@dataclass
class Proxy:
    url: str
    recorder: Recorder
    server: str = "uvicorn"
    watchers: list[object] = field(default_factory=list)  # Exchange watcher tasks started

    def told_by(self) -> str:
        """How the gateway heard of clients leaving: its own watcher tasks, or restmon's
        protocol (the ON_DISCONNECT extension), which leaves it none to start."""
        return "watcher" if self.watchers else "protocol"


# uvicorn's own protocol, and restmon's bounded one (as `restmon serve`), which offers the
# ON_DISCONNECT extension: the gateway hears of a client leaving both ways.
SERVERS = {"uvicorn": None, "restmon": ConnectionLimits()}
TOLD_BY = {"uvicorn": "watcher", "restmon": "protocol"}


@pytest.fixture(name="served", params=sorted(SERVERS))
def fixture_served(
    request: pytest.FixtureRequest,
    bookstore_pb: ModuleType,
    upstream: UpstreamProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Proxy]:
    served = Proxy("", Recorder(), request.param)
    monkeypatch.setattr(Exchange, "_start_watcher", _counted(served.watchers))
    options = GatewayOptions(upstream=UpstreamOptions(deadline=5.0))
    gateway = Gateway(
        upstream=upstream.address, packages=[bookstore_pb], options=options, monitor=served.recorder
    )
    with uvicorn_server(gateway, limits=SERVERS[request.param]) as served.url:
        yield served


def _counted(started: list[object]) -> Any:
    start = Exchange._start_watcher

    def counting(exchange: Exchange) -> None:
        started.append(exchange)
        start(exchange)

    return counting


@pytest.fixture(name="proxy")
def fixture_proxy(bookstore_pb: ModuleType, upstream: UpstreamProcess) -> Iterator[Proxy]:
    recorder = Recorder()
    options = GatewayOptions(upstream=UpstreamOptions(deadline=5.0))
    gateway = Gateway(
        upstream=upstream.address, packages=[bookstore_pb], options=options, monitor=recorder
    )
    with uvicorn_server(gateway) as url:
        yield Proxy(url, recorder)


def get(url: str, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = httpx.get(url + path, timeout=10, **kwargs)
    return response, time.monotonic() - began


# --- The upstream goes away, and comes back ---


@pytest.mark.parametrize("how", ["kill", "stop"], ids=["sigkill", "sigterm"])
def test_upstream_down_is_503_quickly_then_restarted_upstream_serves(
    proxy: Proxy, upstream: UpstreamProcess, how: str
) -> None:
    assert get(proxy.url, "/v1/shelves/fiction")[0].status_code == 200  # a connection is open
    getattr(upstream, how)()
    response, took = get(proxy.url, "/v1/shelves/fiction")
    assert (response.status_code, response.json()["code"]) == (503, Code.UNAVAILABLE)
    assert took < 2
    upstream.start()  # the same port
    response, _ = get(proxy.url, "/v1/shelves/fiction")
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "shelves/fiction"


def test_upstream_killed_during_a_call_is_503_not_the_deadline(
    proxy: Proxy, upstream: UpstreamProcess
) -> None:
    threading.Timer(0.3, upstream.kill).start()
    response, took = get(proxy.url, "/v1/shelves/slow-4000")
    assert (response.status_code, response.json()["code"]) == (503, Code.UNAVAILABLE)
    assert took < 2  # the deadline is 5 s


def test_upstream_slower_than_the_deadline_is_504_at_the_deadline(
    proxy: Proxy, upstream: UpstreamProcess
) -> None:
    headers = {"grpc-timeout": "300m", "x-request-id": "slow-1"}
    response, took = get(proxy.url, "/v1/shelves/slow-3000", headers=headers)
    assert (response.status_code, response.json()["code"]) == (504, Code.DEADLINE_EXCEEDED)
    assert 0.3 <= took < 1.5
    upstream.wait_for("cancelled GetShelf slow-1")  # the server stopped working on it too


def test_keepalive_notices_an_upstream_that_went_silent(
    bookstore_pb: ModuleType, upstream: UpstreamProcess
) -> None:
    """A frozen server (SIGSTOP) keeps its sockets open: no FIN, no GOAWAY, and the kernel still
    accepts connections for it. Without pings a call would wait for its deadline (5 s)."""
    options = GatewayOptions(
        upstream=UpstreamOptions(deadline=5.0, keepalive=0.2, connect_timeout=0.3)
    )
    gateway = Gateway(upstream=upstream.address, packages=[bookstore_pb], options=options)
    with uvicorn_server(gateway) as url:
        assert get(url, "/v1/shelves/fiction")[0].status_code == 200
        os.kill(upstream.pid, signal.SIGSTOP)
        try:
            response, took = get(url, "/v1/shelves/fiction")
        finally:
            os.kill(upstream.pid, signal.SIGCONT)
    assert (response.status_code, response.json()["code"]) == (503, Code.UNAVAILABLE)
    assert took < 2.5  # a ping interval and its timeout, not the deadline


# --- The HTTP client goes away ---


def test_client_gone_during_a_unary_call_cancels_it_upstream(
    served: Proxy, upstream: UpstreamProcess
) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(
            served.url + "/v1/shelves/slow-4000", headers={"x-request-id": "gone-1"}, timeout=0.5
        )
    assert upstream.wait_for("cancelled GetShelf gone-1", timeout=2) < 1.5
    assert served.recorder.wait_for("gone-1") == Code.CANCELLED
    assert served.told_by() == TOLD_BY[served.server]


def test_client_gone_during_a_stream_cancels_it_upstream(
    served: Proxy, upstream: UpstreamProcess
) -> None:
    headers = {"x-request-id": "gone-2"}
    with httpx.stream("GET", served.url + "/v1/shelves/many:watch", headers=headers) as response:
        lines = response.iter_lines()
        assert [next(lines) for _ in range(3)][2].startswith('{"result":')
    upstream.wait_for("cancelled WatchShelf gone-2", timeout=3)
    assert served.recorder.wait_for("gone-2") == Code.CANCELLED
    assert served.told_by() == TOLD_BY[served.server]


def test_a_client_that_stays_is_answered_on_either_server(served: Proxy) -> None:
    """The extension's callback is dropped with the response: calls on one kept-alive
    connection, each answered, none cancelled."""
    with httpx.Client(base_url=served.url, timeout=10) as client:
        for n in range(3):
            headers = {"x-request-id": f"stays-{n}"}
            assert client.get("/v1/shelves/fiction", headers=headers).status_code == 200
    assert [served.recorder.wait_for(f"stays-{n}") for n in range(3)] == [Code.OK] * 3


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_client_gone_cancels_an_in_process_handler_too(
    bookstore_pb: ModuleType, server: str
) -> None:
    cancelled = threading.Event()
    base: type = type(make_service(bookstore_pb))

    class Slow(base):  # type: ignore[misc]
        async def get_shelf(self, request: Any) -> Any:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return await super().get_shelf(request)

    recorder = Recorder()
    with uvicorn_server(Gateway([Slow()], monitor=recorder), limits=SERVERS[server]) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(url + "/v1/shelves/fiction", headers={"x-request-id": "gone-3"}, timeout=0.5)
        assert cancelled.wait(2)
        assert recorder.wait_for("gone-3") == Code.CANCELLED


def test_a_finished_call_is_not_cancelled(proxy: Proxy, upstream: UpstreamProcess) -> None:
    response, _ = get(proxy.url, "/v1/shelves/fiction", headers={"x-request-id": "fine-1"})
    assert response.status_code == 200
    assert proxy.recorder.wait_for("fine-1") == Code.OK
    assert "done GetShelf fine-1" in upstream.lines()


# --- Streams in both directions, without buffering them ---


def test_client_stream_lines_go_upstream_as_they_arrive(
    proxy: Proxy, upstream: UpstreamProcess
) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"name":"shelves/fiction/books/a"}\n'
        # The next line is sent only once the server has the first: a gateway that read the
        # whole body first would wait here forever.
        upstream.wait_for("received shelves/fiction/books/a")
        yield b'{"name":"shelves/fiction/books/b"}\n'

    response = httpx.post(
        proxy.url + "/v1/books:import",
        content=body(),
        headers={"content-type": "application/x-ndjson"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["importedCount"] == 2


STREAMED = 10_000  # events of 4 KiB: 40 MB on the wire, 10 times the HTTP/2 window
# The client's receive buffer, fixed (SO_RCVBUF turns off the kernel's autotuning, which on
# loopback grows it up to tcp_rmem's maximum, 32 MiB here: a stalled client would take in
# most of the stream itself, and the test would measure the kernel, not the gateway).
CLIENT_RCVBUF = 64 * 1024


def test_slow_client_keeps_the_gateway_memory_bounded(
    bookstore_pb: ModuleType, tmp_path: Path
) -> None:
    upstream = UpstreamProcess(bookstore_pb, tmp_path / "events.log", payload=4096)
    gateway = GatewayProcess(bookstore_pb, upstream.address)
    upstream.start()
    gateway.start()
    try:
        idle = gateway.rss_kib()
        url = f"{gateway.url}/v1/shelves/many:watch?maxEvents={STREAMED}"
        options = [(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)]
        client = httpx.Client(transport=httpx.HTTPTransport(socket_options=options))
        request = client.stream("GET", url, headers={"x-request-id": "slow-reader"})
        with client, request as response:
            lines = response.iter_lines()
            next(lines)
            time.sleep(1.5)  # the client stalls: the gateway may not read the stream ahead
            stalled = gateway.rss_kib()
            sent = [int(line.split()[1]) for line in upstream.lines() if line.startswith("sent")]
            count = 1 + sum(1 for _ in lines)
    finally:
        gateway.stop()
        upstream.stop()
    print(f"gateway RSS idle {idle} KiB, stalled {stalled} KiB, server sent {sent}")
    assert count == STREAMED  # every event arrived, in the end
    # Flow control held the server back: what it sent fits in socket buffers and one HTTP/2
    # window (upstream.STREAM_WINDOW, 1 MiB), not the whole stream.
    assert max(sent, default=0) < STREAMED // 2, sent
    assert stalled - idle < 8 * 1024, (idle, stalled)
