"""End to end: a unary GET through the Gateway under uvicorn vs a hand-written Starlette endpoint.

Both servers run the same service object and write the same JSON (the same codec); the difference
is what the gateway adds: routing, transcoding, error mapping. Load comes from wrk (Debian
package `wrk`) in a second process, alternating between the two servers. Also measures the
gateway's own overhead per request in-process (ASGI calls, no network).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.example_package import free_port
from benchmarks.results import machine_line, write_section

REPO = Path(__file__).resolve().parent.parent
URL_PATH = "/v1/shelves/fiction"

SERVER = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{root!r}, {repo!r}]
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    import gen.bookstore.v1 as pb
    from examples.bookstore import make_service
    from protoc_gen_restmon.runtime.jsoncodec.bridge import from_betterproto
    from protoc_gen_restmon.runtime.jsoncodec.write import to_json
    from protoc_gen_restmon.runtime.jsoncodec.registry import DescriptorRegistry
    from protoc_gen_restmon.runtime.gateway.app import Gateway

    service = make_service(pb)
    if {kind!r} == "gateway":
        app = Gateway(services=[service])
    else:
        import gen.bookstore.v1._restmon_monitor as monitor
        registry = DescriptorRegistry()
        registry.add_module(monitor)
        Shelf = registry.message_class("bookstore.v1.Shelf")

        async def get_shelf(request):
            shelf = await service.get_shelf(pb.GetShelfRequest(shelf=request.path_params["shelf"]))
            return Response(to_json(from_betterproto(shelf, Shelf)), media_type="application/json")

        app = Starlette(routes=[Route("/v1/shelves/{{shelf}}", get_shelf)])
    uvicorn.run(app, host="127.0.0.1", port={port}, log_level="error", access_log=False)
    """
)


def start(kind: str, root: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    code = SERVER.format(root=str(root), repo=str(REPO), kind=kind, port=port)
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{kind} server did not start")


def wrk(port: int, seconds: int = 5) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c10", f"-d{seconds}s", f"http://127.0.0.1:{port}{URL_PATH}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    return float(line.split()[1])


def in_process_overhead(root: Path) -> tuple[float, float]:
    """Median µs per request through Gateway.__call__ and through the service call alone."""
    sys.path[:0] = [str(root), str(REPO)]
    import gen.bookstore.v1 as pb  # type: ignore[import-not-found]

    from examples.bookstore import make_service
    from protoc_gen_restmon.runtime.gateway.app import Gateway

    service = make_service(pb)
    gateway = Gateway(services=[service])
    scope = {
        "type": "http",
        "method": "GET",
        "path": URL_PATH,
        "raw_path": URL_PATH.encode(),
        "query_string": b"",
        "headers": [],
        "root_path": "",
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        return None

    async def through_gateway() -> None:
        await gateway(scope, receive, send)

    async def direct() -> None:
        await service.get_shelf(pb.GetShelfRequest(shelf="fiction"))

    async def measure(call: object, n: int = 3000) -> float:
        samples = []
        for _ in range(n):
            t = time.perf_counter_ns()
            await call()  # type: ignore[operator]
            samples.append(time.perf_counter_ns() - t)
        return statistics.median(samples) / 1000

    async def both() -> tuple[float, float]:
        await measure(through_gateway, 300)
        return await measure(through_gateway), await measure(direct)

    return asyncio.run(both())


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench_gateway needs wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        protos = sorted(str(p) for p in (REPO / "protos").rglob("*.proto"))
        restmon = Path(sys.executable).with_name("restmon")
        subprocess.run(
            [
                str(restmon),
                "generate",
                "-I",
                str(REPO / "protos"),
                "-o",
                str(root / "gen"),
                *protos,
            ],
            check=True,
        )
        results: dict[str, list[float]] = {"gateway": [], "starlette": []}
        for _ in range(2):
            for kind in results:
                process, port = start(kind, root)
                try:
                    wrk(port, 1)  # warm up
                    results[kind].append(wrk(port))
                finally:
                    process.terminate()
                    process.wait()
        gateway_us, handler_us = in_process_overhead(root)
    gw, st = max(results["gateway"]), max(results["starlette"])
    body = "\n".join(
        [
            "## Gateway end to end: unary GET under uvicorn",
            "",
            f"`python benchmarks/bench_gateway.py`: `GET {URL_PATH}` (GetShelf), wrk -t1 -c10,",
            "5 s per run, best of 2 alternating runs; both servers: one uvicorn process, the same",
            "service, the same JSON codec.",
            machine_line(),
            "",
            "| server | requests/s | vs Starlette |",
            "|---|---|---|",
            f"| hand-written Starlette endpoint | {st:,.0f} | 1.00x |",
            f"| Gateway | {gw:,.0f} | {gw / st:.2f}x |",
            "",
            "In-process, no network: a request through `Gateway.__call__` takes "
            f"{gateway_us:.1f} µs (median of 3,000), of which the service call itself is "
            f"{handler_us:.1f} µs: the gateway's own overhead (routing, transcoding, "
            "betterproto/upb crossing, JSON, ASGI messages) is "
            f"{gateway_us - handler_us:.1f} µs per request. Target: ≥ 0.7x of Starlette.",
        ]
    )
    write_section("bench_gateway", body)
    print(body)


if __name__ == "__main__":
    main()
