"""`attach(server, events=True)` next to other RecvRequest listeners, on a real grpclib server.

The scenarios every way of attaching shares are in test_monitor_grpclib.py; these are about how
the RecvRequest listener composes with the listeners of the server's owner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from grpclib.client import Channel
from grpclib.events import RecvRequest, listen
from grpclib.server import Server
from multidict import MultiDict

from protoc_gen_restmon.runtime.monitor.model import CallStatus
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from tests.support.monitor_servers import controlled_bookstore, only, recorded
from tests.support.servers import free_port


@pytest.fixture(name="monitor")
def fixture_monitor(bookstore_pb: ModuleType, tmp_path: Any) -> Iterator[Monitor]:
    monitor = Monitor(f"sqlite:///{tmp_path / 'calls.db'}", packages=[bookstore_pb])
    try:
        yield monitor
    finally:
        monitor.close()


async def call_with_listener(
    pb: ModuleType, monitor: Monitor, listener: Any, *, first: bool
) -> list[str]:
    """GetShelf on a server with `listener` registered before the monitor's (`first`) or
    after it; what the listener noted."""
    notes: list[str] = []
    server = Server([controlled_bookstore(pb)])
    if first:
        listen(server, RecvRequest, listener(notes))
    monitor.attach(server, events=True)
    if not first:
        listen(server, RecvRequest, listener(notes))
    port = free_port()
    await server.start("127.0.0.1", port)
    channel = Channel("127.0.0.1", port)
    try:
        stub = pb.BookstoreServiceStub(channel)
        await stub.get_shelf(pb.GetShelfRequest(shelf="fiction"), metadata={"x-request-id": "r1"})
    finally:
        channel.close()
        server.close()
        await server.wait_closed()
    return notes


def test_a_handler_replaced_by_an_earlier_listener_is_monitored(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    def replacing(notes: list[str]) -> Any:
        async def on_request(event: RecvRequest) -> None:
            inner = event.method_func

            async def replaced(stream: Any) -> None:
                notes.append("replacement ran")
                await inner(stream)

            event.method_func = replaced

        return on_request

    notes = asyncio.run(call_with_listener(bookstore_pb, monitor, replacing, first=True))
    assert notes == ["replacement ran"]
    record = only(recorded(monitor))
    assert (record.method_name, record.status) == ("GetShelf", CallStatus.SUCCESS)
    assert record.request_id == "r1"


def test_metadata_is_recorded_as_the_handler_sees_it_after_every_listener(
    monitor: Monitor, bookstore_pb: ModuleType
) -> None:
    def retagging(notes: list[str]) -> Any:
        async def on_request(event: RecvRequest) -> None:
            notes.append(event.metadata["x-request-id"])
            event.metadata = MultiDict(  # a new object: the event's is not changed in place
                (k, "retagged" if k == "x-request-id" else v) for k, v in event.metadata.items()
            )

        return on_request

    # Registered after the monitor's listener, and still what is recorded: the call is
    # described from the stream the handler is given, not from the event.
    notes = asyncio.run(call_with_listener(bookstore_pb, monitor, retagging, first=False))
    assert notes == ["r1"]
    assert only(recorded(monitor)).request_id == "retagged"
