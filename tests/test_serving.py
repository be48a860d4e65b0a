"""runtime/serving.py's grpc.aio branch, in process (neither entry point serves grpc.aio; the
processes of tests/test_stop.py cover the rest): `stop(grace)` lets a call in flight finish,
cancels it at the end of the grace, and a second signal (`Stop.hurried`) cancels it at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest

from protoc_gen_restmon.runtime.serving import Stop, _stop_grpc


async def wait(request: bytes, context: Any) -> bytes:
    """Sleeps as many seconds as the request says (raw bytes: no codec needed)."""
    await asyncio.sleep(float(request.decode()))
    return b"done"


def on_aio_server(
    scenario: Callable[[Any, Callable[[bytes], Awaitable[bytes]]], Awaitable[None]],
) -> None:
    async def run() -> None:
        server = grpc.aio.server()
        methods = {"Wait": grpc.unary_unary_rpc_method_handler(wait)}
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Slow", methods),)
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            await scenario(server, channel.unary_unary("/test.Slow/Wait"))
        finally:
            await channel.close()
            await server.stop(0)

    asyncio.run(run())


def test_a_call_in_flight_finishes_within_the_grace() -> None:
    async def scenario(server: Any, call: Callable[[bytes], Awaitable[bytes]]) -> None:
        answer = asyncio.ensure_future(call(b"0.5"))
        await asyncio.sleep(0.1)
        began = time.monotonic()
        await _stop_grpc(server, 10, Stop())
        assert time.monotonic() - began < 5
        assert await answer == b"done"

    on_aio_server(scenario)


@pytest.mark.parametrize(("grace", "hurry"), [(0.3, False), (30, True)], ids=["grace", "hurried"])
def test_a_call_still_running_is_cancelled(grace: float, hurry: bool) -> None:
    async def scenario(server: Any, call: Callable[[bytes], Awaitable[bytes]]) -> None:
        answer = asyncio.ensure_future(call(b"30"))
        await asyncio.sleep(0.1)
        stop = Stop()
        if hurry:
            asyncio.get_running_loop().call_later(0.2, stop.hurried.set)
        began = time.monotonic()
        await _stop_grpc(server, grace, stop)
        assert time.monotonic() - began < 5
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await answer
        assert ended.value.code() in {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}

    on_aio_server(scenario)


def test_restmon_serve_and_the_demo_default_to_the_runtimes_grace() -> None:
    """serve_cli keeps its own copy (importing the runtime would slow `restmon generate`)."""
    from examples.serve import GRACE
    from protoc_gen_restmon.runtime.serving import DEFAULT_GRACE
    from protoc_gen_restmon.serve_cli import DEFAULT_GRACE as CLI_GRACE

    assert CLI_GRACE == GRACE == DEFAULT_GRACE
