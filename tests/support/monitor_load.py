"""Helpers for the monitor's load, fault and secrecy tests: many real clients, real servers.

- `grpclib_port(monitor, service)`: a monitored grpclib server on a free loopback port; its port
  (each client opens its own `Channel` to it).
- `rest_server(app, access_log=)`: uvicorn serving `app` in a thread; with `access_log`, uvicorn
  leaves logging to the root logger (no `log_config`), so a test handler sees the access log.
- `PlannedCall`, `grpc_client`, `rest_client`: a client making its share of the calls, one
  after another, and reporting each call's outcome (a gRPC code name).
- `issue_keys(store, n)`: n API keys made the way operators make them, with their secrets.
- `stored_count(store, ...)`: how many records the store holds (by method, status);
  `stored_records(store)`: all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httpx
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.server import Server

from protoc_gen_restmon.runtime.grpclib_private import close_server
from protoc_gen_restmon.runtime.monitor.keys import create_api_key
from protoc_gen_restmon.runtime.monitor.model import (
    ApiKey,
    CallRecord,
    CallStatus,
    KeyType,
    RequestQuery,
    Store,
)
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from tests.support.monitor_servers import uvicorn_server
from tests.support.servers import free_port

WAIT = 20.0  # seconds a test waits for a server or the writer (a failing batch: ~2 s)
GET_SHELF, LIST_SHELVES = "GetShelf", "ListShelves"
# The REST route of each method the clients call (protos/bookstore/v1/bookstore.proto).
REST_PATHS = {GET_SHELF: "/v1/shelves/fiction", LIST_SHELVES: "/v1/shelves"}
# How the gateway's HTTP statuses map back to the gRPC codes the clients report.
HTTP_CODES = {200: "OK", 401: "UNAUTHENTICATED", 503: "UNAVAILABLE"}
PAGE = 1000  # the largest page `Store.requests` serves


@dataclass(frozen=True, slots=True)
class PlannedCall:
    method: str  # GET_SHELF or LIST_SHELVES
    secret: str | None  # the x-api-key sent, if any
    request_id: str  # sent as x-request-id: finds the call's record in the store

    def headers(self) -> dict[str, str]:
        sent = {"x-request-id": self.request_id}
        if self.secret is not None:
            sent["x-api-key"] = self.secret
        return sent


@dataclass(frozen=True, slots=True)
class Outcome:
    call: PlannedCall
    code: str  # gRPC code name: "OK", "UNAUTHENTICATED", …
    message: str  # what the client was told besides the code


def issue_keys(store: Store, count: int) -> list[tuple[ApiKey, str]]:
    """`count` active service keys made the way operators make them: (key, secret)."""
    return [
        create_api_key(store, f"load-{index}", KeyType.SERVICE, user_id=index, username=f"u{index}")
        for index in range(count)
    ]


@contextlib.asynccontextmanager
async def grpclib_port(monitor: Monitor, service: Any) -> AsyncIterator[int]:
    server = Server([service])
    monitor.attach(server)
    port = free_port()
    await server.start("127.0.0.1", port)
    try:
        yield port
    finally:
        await close_server(server)


@contextlib.contextmanager
def rest_server(app: Any, *, access_log: bool = False) -> Iterator[str]:
    """uvicorn serving `app` on a free loopback port, in a thread; yields its base URL."""
    with uvicorn_server(
        app,
        access_log=access_log,
        log_level="debug" if access_log else "warning",
        log_config=None,  # keep the test's handlers: uvicorn.access then propagates to root
    ) as base:
        yield base


async def grpc_call(stub: Any, pb: ModuleType, call: PlannedCall) -> Outcome:
    if call.method == GET_SHELF:
        send, request = stub.get_shelf, pb.GetShelfRequest(shelf="fiction")
    else:
        send, request = stub.list_shelves, pb.ListShelvesRequest()
    try:
        await send(request, metadata=call.headers())
    except GRPCError as error:
        return Outcome(call, error.status.name, error.message or "")
    return Outcome(call, "OK", "")


async def grpc_client(port: int, pb: ModuleType, plan: Sequence[PlannedCall]) -> list[Outcome]:
    """One client on its own channel, making its calls one after another."""
    channel = Channel("127.0.0.1", port)
    try:
        stub = pb.BookstoreServiceStub(channel)
        return [await grpc_call(stub, pb, call) for call in plan]
    finally:
        channel.close()


async def rest_client(base: str, plan: Sequence[PlannedCall]) -> list[Outcome]:
    """One HTTP client (its own connection pool) making its calls one after another."""
    outcomes = []
    async with httpx.AsyncClient(base_url=base, timeout=WAIT) as client:
        for call in plan:
            reply = await client.get(REST_PATHS[call.method], headers=call.headers())
            code = HTTP_CODES.get(reply.status_code, f"HTTP {reply.status_code}")
            outcomes.append(Outcome(call, code, "" if code == "OK" else reply.text))
    return outcomes


def stored_count(
    store: Store,
    *,
    method: str | None = None,
    status: CallStatus | None = None,
) -> int:
    return store.requests(RequestQuery(method=method, status=status, limit=1)).count


def stored_records(store: Store) -> list[CallRecord]:
    """Every stored record, a page (the API's largest) at a time."""
    found: list[CallRecord] = []
    while True:
        page = store.requests(RequestQuery(limit=PAGE, offset=len(found)))
        found += page.results
        if len(found) >= page.count or not page.results:
            return found
