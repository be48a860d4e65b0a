"""Putting the admin API beside a gateway (`with_admin`) and under a mount point."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from protoc_gen_restmon.runtime.admin import app as admin_app_module
from protoc_gen_restmon.runtime.admin.app import AdminApp
from protoc_gen_restmon.runtime.admin.auth import create_admin_token
from protoc_gen_restmon.runtime.admin.mount import with_admin
from protoc_gen_restmon.runtime.gateway.app import Gateway
from protoc_gen_restmon.runtime.gateway.http import Message, Receive, Scope, Send
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from protoc_gen_restmon.runtime.monitor.stores import open_store
from tests.support.gateway_fixtures import make_test_service
from tests.support.servers import uvicorn_server


class LifespanApp:
    """Answers lifespan events as told, and remembers them; answers HTTP with its name."""

    def __init__(self, name: str, startup: str = "complete") -> None:
        self.name = name
        self.startup = startup
        self.events: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            body = self.name.encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        while True:
            event = await receive()
            self.events.append(event["type"])
            if event["type"] == "lifespan.startup":
                reply: Message = {"type": f"lifespan.startup.{self.startup}"}
                if self.startup == "failed":
                    reply["message"] = f"{self.name} cannot start"
                await send(reply)
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return


async def no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("lifespan is not supported")


async def drive_lifespan(app: Any) -> list[Message]:
    """Play a server's part: startup, then shutdown when startup completed."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            inbox.put_nowait({"type": "lifespan.shutdown"})

    inbox.put_nowait({"type": "lifespan.startup"})
    await asyncio.wait_for(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send), 5
    )
    return sent


def test_lifespan_reaches_both_apps() -> None:
    gateway, admin = LifespanApp("gateway"), LifespanApp("admin")
    sent = asyncio.run(drive_lifespan(with_admin(gateway, admin)))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert gateway.events == admin.events == ["lifespan.startup", "lifespan.shutdown"]


def test_lifespan_failure_of_one_app_fails_startup() -> None:
    gateway, admin = LifespanApp("gateway"), LifespanApp("admin", startup="failed")
    sent = asyncio.run(drive_lifespan(with_admin(gateway, admin)))
    assert sent == [{"type": "lifespan.startup.failed", "message": "admin cannot start"}]


def test_an_app_without_lifespan_does_not_block_the_other() -> None:
    gateway = LifespanApp("gateway")
    sent = asyncio.run(drive_lifespan(with_admin(gateway, no_lifespan)))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert gateway.events == ["lifespan.startup", "lifespan.shutdown"]


ROUTED = [
    pytest.param("/api/grpc/monitor/health/", "admin", id="api-grpc"),
    pytest.param("/cfg/grpc/proto-files/", "admin", id="cfg-grpc"),
    pytest.param("/metrics", "admin", id="metrics"),
    pytest.param("/metrics/", "admin", id="metrics-slash"),
    pytest.param("/metricsx", "gateway", id="metrics-prefix-only"),
    pytest.param("/api/grpcx/", "gateway", id="near-miss"),
    pytest.param("/v1/shelves", "gateway", id="gateway"),
    pytest.param("/", "gateway", id="root"),
]


@pytest.fixture(scope="module")
def routed() -> Iterator[str]:
    with uvicorn_server(with_admin(LifespanApp("gateway"), LifespanApp("admin"))) as base:
        yield base


@pytest.mark.parametrize(("path", "target"), ROUTED)
def test_with_admin_routes_by_prefix(routed: str, path: str, target: str) -> None:
    assert httpx.get(routed + path).text == target


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[Monitor]:
    with Monitor(f"sqlite:///{tmp_path / 'mount.db'}") as opened:
        yield opened


def test_admin_api_under_a_starlette_mount_and_root_path(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    _, token = create_admin_token(monitor.store, "mount")
    admin = AdminApp(monitor, packages=[bookstore_pb])
    gateway = Gateway(services=[make_test_service(bookstore_pb)], monitor=monitor)
    headers = {"Authorization": f"Bearer {token}"}
    mounted = Starlette(routes=[Mount("/ops", app=with_admin(gateway, admin))])
    with uvicorn_server(mounted) as base:
        assert httpx.get(f"{base}/ops/api/grpc/monitor/health/", headers=headers).status_code == 200
        label = httpx.get(
            f"{base}/ops/cfg/grpc/proto-files/bookstore.v1.bookstore/", headers=headers
        )
        assert "service BookstoreService {" in label.text
        assert httpx.get(f"{base}/ops/v1/shelves").status_code == 200
        assert httpx.get(f"{base}/api/grpc/monitor/health/", headers=headers).status_code == 404
    with uvicorn_server(admin, root_path="/ops") as base:
        assert httpx.get(f"{base}/api/grpc/monitor/health/", headers=headers).status_code == 200


def test_public_metrics_needs_no_credentials(monitor: Monitor) -> None:
    with uvicorn_server(AdminApp(monitor, public_metrics=True)) as base:
        assert httpx.get(f"{base}/metrics").status_code == 200
        assert httpx.get(f"{base}/api/grpc/monitor/health/").status_code == 401


def test_generate_without_proto_dir_is_a_failed_precondition(monitor: Monitor) -> None:
    _, token = create_admin_token(monitor.store, "t")
    with uvicorn_server(AdminApp(monitor)) as base:
        response = httpx.post(
            f"{base}/cfg/grpc/proto-files/generate/", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 400 and response.json()["code"] == 9
    assert "no proto_dir" in response.json()["message"]


def test_a_failing_store_is_a_503_not_a_crash(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'closing.db'}")
    _, token = create_admin_token(store, "t")
    monitor = Monitor(store)
    try:
        with uvicorn_server(AdminApp(monitor)) as base:
            headers = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"{base}/api/grpc/api-keys/", headers=headers).status_code == 200
            store.close()
            response = httpx.get(f"{base}/api/grpc/api-keys/", headers=headers)
    finally:
        monitor.close()
    assert response.status_code == 503
    # The cause is logged, not told: a store's address is nobody's business but the admin's log.
    assert response.json() == {
        "code": 14,
        "message": "the monitor's store is unavailable",
        "details": [],
    }


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_dashboard_script_parses(tmp_path: Path) -> None:
    page = (Path(admin_app_module.__file__).parent / "dashboard.html").read_text()
    script = re.search(r"<script>(.*)</script>", page, re.DOTALL)
    assert script is not None
    (tmp_path / "dashboard.js").write_text(script.group(1))
    result = subprocess.run(
        ["node", "--check", str(tmp_path / "dashboard.js")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
