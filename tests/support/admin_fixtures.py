"""Fixtures for the admin API tests: the whole stack on loopback, on SQLite and PostgreSQL.

`admin_stack` (module scope, parametrized sqlite/postgresql): a Monitor on a fresh database, a
grpclib server with the monitor attached, and uvicorn serving `with_admin(Gateway, AdminApp)`,
both in one background event loop; an admin password, an admin token and an API key already
exist, and ListGenres needs an API key (the others do not). Tests talk to it as clients do:
httpx over HTTP, grpclib stubs over gRPC.

A module using the stack imports both fixtures:
the fixtures (registered by tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from grpclib.client import Channel
from grpclib.server import Server

from protoc_gen_restmon.runtime.admin.app import AdminApp
from protoc_gen_restmon.runtime.admin.auth import create_admin_token
from protoc_gen_restmon.runtime.admin.mount import with_admin
from protoc_gen_restmon.runtime.gateway.app import Gateway
from protoc_gen_restmon.runtime.grpclib_private import close_server
from protoc_gen_restmon.runtime.monitor.keys import create_api_key, hash_password
from protoc_gen_restmon.runtime.monitor.model import KeyType
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from tests.support.gateway_fixtures import make_test_service
from tests.support.monitor_fixtures import create_database, drop_database
from tests.support.postgres_server import PostgresServer
from tests.support.servers import free_port

T = TypeVar("T")
ADMIN_USER, ADMIN_PASSWORD = "admin", "s3cret admin password"
WAIT = 10.0
# The one method of the stack that needs an API key (so that key use is recorded and counted).
KEYED_METHOD = "/bookstore.v1.BookstoreService/ListGenres"


@dataclass
class AdminStack:
    base: str  # http://127.0.0.1:<port>
    grpc_port: int
    monitor: Monitor
    pb: ModuleType
    proto_dir: Path
    token: str  # an admin bearer token
    api_key: str  # an API key's secret (not an admin credential)
    api_key_id: int

    def client(
        self, auth: httpx.Auth | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Client:
        return httpx.Client(base_url=self.base, auth=auth, headers=headers, timeout=WAIT)

    def admin(self) -> httpx.Client:
        return self.client(headers={"Authorization": f"Bearer {self.token}"})

    def grpc(self, call: Callable[[Any], Awaitable[T]]) -> T:
        """Run `call(stub)` on a fresh channel to the gRPC server."""

        async def run() -> T:
            channel = Channel("127.0.0.1", self.grpc_port)
            try:
                return await call(self.pb.BookstoreServiceStub(channel))
            finally:
                channel.close()

        return asyncio.run(run())

    def flush(self) -> None:
        assert self.monitor.settle(WAIT), "calls still running, or the writer did not flush"


@contextlib.contextmanager
def serving(monitor: Monitor, service: Any, app: Any) -> Iterator[tuple[str, int]]:
    """uvicorn (on `app`) and a grpclib server (on `service`, monitored) in one background
    loop; yields (http base URL, gRPC port) and stops both."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port, grpc_port = sock.getsockname()[1], free_port()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))

    async def main() -> None:
        grpc_server = Server([service])
        monitor.attach(grpc_server)
        await grpc_server.start("127.0.0.1", grpc_port)
        try:
            await server.serve(sockets=[sock])
        finally:
            await close_server(grpc_server)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the admin stack did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}", grpc_port
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)
        sock.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"], name="admin_store_url")
def fixture_admin_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database for one module's stack."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('admin') / 'restmon.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = create_database(server)
    try:
        yield server.dsn_for(name)
    finally:
        drop_database(server, name)


@pytest.fixture(scope="module", name="admin_stack")
def fixture_admin_stack(
    admin_store_url: str, bookstore_pb: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminStack]:
    monitor = Monitor(admin_store_url, packages=[bookstore_pb], require_keys=[KEYED_METHOD])
    store = monitor.store
    store.set_admin_password(ADMIN_USER, hash_password(ADMIN_PASSWORD))
    _, token = create_admin_token(store, "tests")
    key, api_key = create_api_key(store, "Analytics", KeyType.SERVICE, user_id=5, username="svc")
    service = make_test_service(bookstore_pb)
    proto_dir = tmp_path_factory.mktemp("protos")
    gateway = Gateway(services=[service], monitor=monitor)
    admin = AdminApp(monitor, packages=[bookstore_pb], proto_dir=proto_dir)
    try:
        with serving(monitor, service, with_admin(gateway, admin)) as (base, grpc_port):
            yield AdminStack(
                base, grpc_port, monitor, bookstore_pb, proto_dir, token, api_key, key.id
            )
    finally:
        monitor.close()
