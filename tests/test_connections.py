"""The bounded protocols' pieces (runtime/connections.py): the connection table, and the
uvicorn attributes the protocols read (the attacks themselves: tests/test_hostile_clients.py)."""

from __future__ import annotations

import asyncio
import inspect
import sys

import pytest
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl

from protoc_gen_restmon.runtime.connections import (
    PROTOCOLS,
    ConnectionLimits,
    ConnectionTable,
    bound_uvicorn,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("http", sorted(PROTOCOLS))
def test_uvicorn_protocols_have_what_the_bounds_read(http: str) -> None:
    """Pinned: `cycle` (more_body, response_started, response_complete), `flow.read_paused`,
    `transport`, `loop`, `on_response_complete`, as the bounded protocols use them."""
    config = uvicorn.Config(app=lambda *a: None, http=http)
    bound_uvicorn(config, ConnectionLimits())
    config.load()
    loop = asyncio.new_event_loop()
    try:
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=uvicorn.server.ServerState(), app_state={}, _loop=loop
        )
    finally:
        loop.close()
    assert protocol.cycle is None and protocol.loop is loop
    assert callable(protocol.on_response_complete)
    assert FlowControl(None).read_paused is False  # type: ignore[arg-type]
    implementation = sys.modules[type(protocol).__mro__[2].__module__]
    made = inspect.getsource(implementation.RequestResponseCycle.__init__)
    for attribute in ("more_body", "response_started", "response_complete"):
        assert f"self.{attribute} = " in made, attribute


class FakeConnection:
    def __init__(self) -> None:
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True


def test_connection_table_closes_the_longest_waiting_then_refuses() -> None:
    clock = Clock()
    table = ConnectionTable(ConnectionLimits(max_connections=2), clock)
    first, second, third, fourth = (FakeConnection() for _ in range(4))
    assert table.admit(first) and table.admit(second)  # type: ignore[arg-type]
    clock.now = 1.0
    table.read(first)  # type: ignore[arg-type]  # its body arrives since 1.0, `second` waits since 0
    assert table.admit(third)  # type: ignore[arg-type]
    assert second.evicted and not first.evicted
    clock.now = 2.0
    table.busy(first)  # type: ignore[arg-type]
    table.busy(third)  # type: ignore[arg-type]
    assert not table.admit(fourth)  # type: ignore[arg-type]  # both have a request in progress
    assert (table.evicted, table.refused) == (1, 1)
