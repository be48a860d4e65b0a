"""The floor of a Python gateway on grpc.aio: the upstream calls alone, no HTTP side.

`python benchmarks/grpc_aio_floor.py PORT SECONDS CONCURRENCY` makes GetEcho calls (raw bytes,
the way `restmon serve`'s channel makes them) on one grpc.aio channel from CONCURRENCY tasks
for SECONDS under uvloop (as under uvicorn), then prints one JSON line: the calls made and this
process's CPU seconds (its C-core poller thread included) while making them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import grpc
import uvloop

PATH = "/echo.v1.EchoService/GetEcho"
REQUEST = b"\x0a\x03abc"  # GetEchoRequest(id="abc")


async def measure(port: int, seconds: float, concurrency: int) -> dict[str, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(PATH)
        for _ in range(200):  # warm-up: the connection, C-core's first calls
            await call(REQUEST)
        calls = 0
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal calls
            while time.monotonic() < end:
                await call(REQUEST)
                calls += 1

        cpu = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"calls": calls, "cpu_seconds": time.process_time() - cpu}


def main() -> None:
    port, seconds, concurrency = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(uvloop.run(measure(port, seconds, concurrency))))


if __name__ == "__main__":
    main()
