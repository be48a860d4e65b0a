"""Pins of the grpclib internals runtime/grpclib_private.py relies on, against the installed
grpclib: each test fails, naming the internal, when an upgrade changes it. Real servers and
channels on loopback (grpclib's own health service), no fakes."""

from __future__ import annotations

import ast
import asyncio
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import grpclib._typing
import grpclib.metadata
import pytest
from grpclib.client import Channel
from grpclib.const import Cardinality as GrpclibCardinality
from grpclib.health.service import Health
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpclib.server import Server, Stream

from protoc_gen_restmon.runtime import grpclib_private
from protoc_gen_restmon.runtime.grpclib_private import (
    Metadata,
    MetadataLike,
    method_table,
    running_calls,
    stop_listening,
)
from protoc_gen_restmon.runtime.specs import Cardinality
from tests.support.protoc_tools import REPO

CHECK = "/grpc.health.v1.Health/Check"


def on_health_server(scenario: Callable[[Server], Awaitable[None]]) -> None:
    """Run `scenario` with a grpclib server of the health service on a loopback port."""

    async def run() -> None:
        server = Server([Health()])
        await server.start("127.0.0.1", 0)
        try:
            await scenario(server)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(run())


def port_of(server: Server) -> int:
    sockets = server._server.sockets  # type: ignore[union-attr]  # only for the test's port
    port: int = sockets[0].getsockname()[1]
    return port


def test_method_table_entry_replaced_serves_the_next_call() -> None:
    """Server._mapping: the dict every connection serves from, read on each call."""

    async def scenario(server: Server) -> None:
        table = method_table(server)
        assert set(table) >= {CHECK}
        handler = table[CHECK]
        assert handler.cardinality is GrpclibCardinality.UNARY_UNARY
        seen: list[str] = []

        async def wrapped(stream: Stream[Any, Any]) -> None:
            seen.append("wrapped")
            await handler.func(stream)

        table[CHECK] = handler._replace(func=wrapped)  # after start: before the connection
        channel = Channel("127.0.0.1", port_of(server))
        try:
            reply = await HealthStub(channel).Check(HealthCheckRequest())
        finally:
            channel.close()
        assert reply.status == HealthCheckResponse.SERVING
        assert seen == ["wrapped"]

    on_health_server(scenario)


def test_method_table_of_something_else_is_a_type_error_naming_the_module() -> None:
    with pytest.raises(TypeError, match=r"object has no method table .*grpclib_private\.py"):
        method_table(object())  # type: ignore[arg-type]


def test_stop_listening_keeps_open_connections_serving() -> None:
    """Server._server, the asyncio.Server start() made: closed, it takes no new connection,
    while a connection already open still serves calls."""

    async def scenario(server: Server) -> None:
        port = port_of(server)
        channel = Channel("127.0.0.1", port)
        try:
            await HealthStub(channel).Check(HealthCheckRequest())  # a connection is open
            stop_listening(server)
            reply = await HealthStub(channel).Check(HealthCheckRequest())
            assert reply.status == HealthCheckResponse.SERVING
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", port)
        finally:
            channel.close()

    on_health_server(scenario)


def test_running_calls_are_the_calls_in_flight() -> None:
    """Server._handlers (one Handler per connection) and Handler._tasks (its calls' tasks)."""

    async def scenario(server: Server) -> None:
        channel = Channel("127.0.0.1", port_of(server))
        try:
            assert running_calls(server) == []
            async with HealthStub(channel).Watch.open() as stream:
                await stream.send_message(HealthCheckRequest(), end=True)
                await stream.recv_message()  # SERVING; the call runs on, watching
                calls = running_calls(server)
                assert len(calls) == 1 and not calls[0].done()
                await stream.cancel()
            for _ in range(500):  # the handler's task ends from the loop, soon
                if not running_calls(server):
                    break
                await asyncio.sleep(0.01)
            assert running_calls(server) == []
        finally:
            channel.close()

    on_health_server(scenario)


def shape(annotation: Any) -> Any:
    """A type, comparable across typing's and collections.abc's spellings and `X | Y`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is None:
        return annotation
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return ("union", frozenset(shape(arg) for arg in args))
    return (origin, tuple(shape(arg) for arg in args))


def test_metadata_types_are_grpclibs_private_ones() -> None:
    value = grpclib.metadata._Value
    assert shape(value) == shape(str | bytes)
    assert shape(grpclib.metadata._MetadataLike) == shape(MetadataLike)
    # A NewType of 'MultiDict[_Value]' (a string: grpclib's own forward reference).
    assert grpclib.metadata._Metadata.__supertype__ == "MultiDict[_Value]"
    assert typing.get_args(Metadata) == (str | bytes,)


def test_method_func_is_grpclibs_server_method_func() -> None:
    call = grpclib._typing.IServerMethodFunc.__call__
    assert inspect.iscoroutinefunction(call)
    assert list(inspect.signature(call).parameters) == ["self", "stream"]


def test_grpclib_cardinalities_have_the_names_of_ours() -> None:
    """grpclib_events maps grpclib's cardinality to ours by name."""
    assert {c.name for c in GrpclibCardinality} == {c.name for c in Cardinality}


# grpclib's internals that grpclib_private.py uses: attributes, and Configuration's keywords.
PRIVATE_ATTRIBUTES = frozenset(
    {"_mapping", "_protocol", "_connected", "__connect__", "_connection"}
)
PRIVATE_KEYWORDS = ("_keepalive_", "_http2_")


def test_no_other_module_of_the_package_touches_grpclib_privates() -> None:
    """Every access is in grpclib_private.py: no other module names one of those internals, a
    private grpclib module or a private name of one."""
    own = grpclib_private.__file__
    offenders = []
    for path in sorted((REPO / "protoc_gen_restmon").rglob("*.py")):
        if str(path) == own:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if private_use(node):
                offenders.append(f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}")
    assert offenders == []


def private_use(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):  # `self._connection` is a class's own
        own = isinstance(node.value, ast.Name) and node.value.id == "self"
        return node.attr in PRIVATE_ATTRIBUTES and not own
    if isinstance(node, ast.keyword):
        return (node.arg or "").startswith(PRIVATE_KEYWORDS)
    if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "grpclib":
        names = [*(node.module or "").split("."), *(alias.name for alias in node.names)]
        return any(name.startswith("_") for name in names)
    if isinstance(node, ast.Import):
        return any(alias.name.startswith("grpclib.") and "._" in alias.name for alias in node.names)
    return False
