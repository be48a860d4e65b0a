"""End to end: a unary GET through the Gateway under uvicorn vs Starlette and FastAPI endpoints.

Every server runs the same service object in one uvicorn process (httptools, uvloop):

- `gateway`: `Gateway(services=[service])`.
- `starlette`: a hand-written Starlette endpoint doing the gateway's handler and codec work
  (betterproto request, service call, upb JSON writer).
- `fastapi`: the same work in a FastAPI path operation returning a `Response`.
- `fastapi-idiomatic`: `return shelf.to_dict()` (betterproto's own dict, FastAPI's encoder).
- `gateway-granian` (when granian is installed): the Gateway under granian instead of uvicorn.
- `gateway-before` (with `--before DIR`): the Gateway of another checkout of the package
  (`git archive REV protoc_gen_restmon examples | tar -x -C DIR`), for before/after in one run.

Load comes from wrk (Debian package `wrk`) in a second process. The arms take turns, in a
rotated order per round, so that every arm sees the same share of the machine's other load;
each run measures requests/s and the server process's CPU time per request (/proc/PID/stat).
`--profile FILE` samples the gateway's server process with py-spy during one more wrk run and
prints where its time goes. Also measures the gateway's own overhead per request in-process
(ASGI calls, no network).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.example_package import free_port, generate_example
from benchmarks.harness import cpu_seconds, py_spy, running, summarize
from benchmarks.harness import wrk as wrk_run
from benchmarks.results import machine_line, write_section

REPO = Path(__file__).resolve().parent.parent
URL_PATH = "/v1/shelves/fiction"
SECONDS = 5

SERVER = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{root!r}, *{code!r}, {repo!r}]
    import gen.bookstore.v1 as pb
    from examples.bookstore import make_service
    from protoc_gen_restmon.runtime.jsoncodec.bridge import from_betterproto
    from protoc_gen_restmon.runtime.jsoncodec.write import to_json
    from protoc_gen_restmon.runtime.jsoncodec.registry import DescriptorRegistry
    from protoc_gen_restmon.runtime.gateway.app import Gateway

    kind = {kind!r}
    service = make_service(pb)
    import gen.bookstore.v1._restmon_monitor as monitor
    registry = DescriptorRegistry()
    registry.add_module(monitor)
    Shelf = registry.message_class("bookstore.v1.Shelf")

    if kind.startswith("gateway"):
        app = Gateway(services=[service])
    elif kind == "starlette":
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        async def get_shelf(request):
            shelf = await service.get_shelf(pb.GetShelfRequest(shelf=request.path_params["shelf"]))
            return Response(to_json(from_betterproto(shelf, Shelf)), media_type="application/json")

        app = Starlette(routes=[Route("/v1/shelves/{{shelf}}", get_shelf)])
    elif kind == "fastapi":
        from fastapi import FastAPI, Response

        app = FastAPI()

        @app.get("/v1/shelves/{{shelf}}")
        async def get_shelf(shelf: str):
            found = await service.get_shelf(pb.GetShelfRequest(shelf=shelf))
            return Response(to_json(from_betterproto(found, Shelf)), media_type="application/json")
    else:
        from fastapi import FastAPI

        app = FastAPI()

        @app.get("/v1/shelves/{{shelf}}")
        async def get_shelf(shelf: str):
            return (await service.get_shelf(pb.GetShelfRequest(shelf=shelf))).to_dict()

    if kind == "gateway-granian":
        from granian.server.embed import Server
        import asyncio
        asyncio.run(Server(app, address="127.0.0.1", port={port}, interface="asgi").serve())
    else:
        import uvicorn
        uvicorn.run(app, host="127.0.0.1", port={port}, log_level="error", access_log=False)
    """
)

ARMS = ["gateway", "starlette", "fastapi", "fastapi-idiomatic"]
LABELS = {
    "gateway": "Gateway",
    "starlette": "hand-written Starlette endpoint",
    "fastapi": "FastAPI, the same handler and codec",
    "fastapi-idiomatic": "FastAPI, idiomatic (`return shelf.to_dict()`)",
    "gateway-granian": "Gateway under granian",
    "gateway-before": "Gateway, before (`--before`)",
}
# Where `gateway-before` imports protoc_gen_restmon and examples from (`--before DIR`).
BEFORE: list[str] = []


@contextmanager
def server(kind: str, root: Path) -> Iterator[tuple[int, int]]:
    """(pid, port) of a server of `kind`, once it accepts connections."""
    port = free_port()
    before = BEFORE if kind == "gateway-before" else []
    code = SERVER.format(root=str(root), repo=str(REPO), code=before, kind=kind, port=port)
    with running([sys.executable, "-c", code], port) as pid:
        yield pid, port


def wrk(port: int, seconds: int = SECONDS) -> tuple[float, int]:
    """(requests/s, requests) of a wrk run; every answer must be a 2xx."""
    return wrk_run(f"http://127.0.0.1:{port}{URL_PATH}", threads=1, connections=10, seconds=seconds)


def measure(kind: str, root: Path) -> tuple[float, float]:
    """(requests/s, server CPU µs per request) of one wrk run after a warm-up."""
    with server(kind, root) as (pid, port):
        wrk(port, 1)
        before = cpu_seconds(pid)
        rate, requests = wrk(port)
        return rate, (cpu_seconds(pid) - before) / requests * 1e6


def profile(root: Path, out: Path, kind: str = "gateway") -> str:
    """py-spy's samples of a server process (the gateway's) under wrk, summed per function."""
    with server(kind, root) as (pid, port):
        wrk(port, 1)
        spying = py_spy(pid, SECONDS, out)
        wrk(port, SECONDS + 1)  # py-spy takes a moment to attach: the load outlasts it
        spying.wait(30)
    return summarize(out.read_text())


def in_process_overhead(root: Path) -> tuple[float, float]:
    """Median µs per request through Gateway.__call__ and through the service call alone."""
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
        "headers": [(b"host", b"127.0.0.1")],
        "root_path": "",
        "client": ("127.0.0.1", 40000),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        return None

    async def through_gateway() -> None:
        await gateway(scope, receive, send)

    async def direct() -> None:
        await service.get_shelf(pb.GetShelfRequest(shelf="fiction"))

    async def timed(call: Any, n: int = 3000) -> float:
        samples = []
        for _ in range(n):
            t = time.perf_counter_ns()
            await call()
            samples.append(time.perf_counter_ns() - t)
        return statistics.median(samples) / 1000

    async def both() -> tuple[float, float]:
        await timed(through_gateway, 300)
        return await timed(through_gateway), await timed(direct)

    return asyncio.run(both())


def spread(values: list[float], fmt: str = ",.0f") -> str:
    """`median (min … max)`."""
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}} … {max(values):{fmt}})"


def report(
    arms: list[str], rates: dict[str, list[float]], cpu: dict[str, list[float]], rounds: int
) -> list[str]:
    rows = [
        "| server | requests/s | CPU µs/request | vs Starlette: rate | CPU | "
        "vs idiomatic FastAPI: rate | CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        cells = [LABELS[arm], spread(rates[arm]), spread(cpu[arm], ".1f")]
        for base in ("starlette", "fastapi-idiomatic"):
            rate = [a / b for a, b in zip(rates[arm], rates[base], strict=True)]
            frugal = [b / a for a, b in zip(cpu[arm], cpu[base], strict=True)]
            cells += [f"{spread(rate, '.2f')}x", f"{spread(frugal, '.2f')}x"]
        rows.append("| " + " | ".join(cells) + " |")
    if "gateway-before" in arms:
        speedup = [a / b for a, b in zip(rates["gateway"], rates["gateway-before"], strict=True)]
        saved = [b - a for a, b in zip(cpu["gateway"], cpu["gateway-before"], strict=True)]
        rows += [
            "",
            f"Gateway vs before, within each round: {spread(speedup, '.2f')}x the requests/s, "
            f"{spread(saved, '.1f')} µs less CPU per request.",
        ]
    return [
        "## Gateway end to end: unary GET under uvicorn",
        "",
        f"`python benchmarks/bench_gateway.py`: `GET {URL_PATH}` (GetShelf), wrk -t1 -c10,",
        f"{SECONDS} s per run after a 1 s warm-up, {rounds} rounds, the arms taking turns in a",
        "rotated order; every server is one uvicorn process (httptools, uvloop) with the same",
        "service and the same JSON codec. Median of the rounds (min … max); the ratios are taken",
        "within each round (both arms of a ratio saw the same load). CPU µs/request: the server",
        "process's user + system time during the run (/proc/PID/stat) over the requests served;",
        "its ratio is the baseline's CPU per request over this server's (higher is better).",
        machine_line(),
        "",
        *rows,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="py-spy collapsed stacks of the gateway")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--before", type=Path, help="another checkout: the gateway-before arm")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_gateway needs wrk (apt-get install wrk)")
    arms = [*ARMS, *(["gateway-granian"] if importlib.util.find_spec("granian") else [])]
    if args.before:
        BEFORE.append(str(args.before.resolve()))
        arms.insert(1, "gateway-before")
    rates: dict[str, list[float]] = {arm: [] for arm in arms}
    cpu: dict[str, list[float]] = {arm: [] for arm in arms}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_example(root)
        for n in range(args.rounds):
            for arm in arms[n % len(arms) :] + arms[: n % len(arms)]:
                rate, cpu_us = measure(arm, root)
                rates[arm].append(rate)
                cpu[arm].append(cpu_us)
                print(f"round {n + 1} {arm}: {rate:,.0f} req/s, {cpu_us:.1f} µs CPU", flush=True)
        gateway_us, handler_us = in_process_overhead(root)
        profiled = profile(root, args.profile) if args.profile else None
    lines = report(arms, rates, cpu, args.rounds)
    lines += [
        "",
        "In-process, no network: a request through `Gateway.__call__` takes "
        f"{gateway_us:.1f} µs (median of 3,000), of which the service call itself is "
        f"{handler_us:.1f} µs: the gateway's own overhead (routing, transcoding, "
        "betterproto/upb crossing, JSON, ASGI messages) is "
        f"{gateway_us - handler_us:.1f} µs per request. Targets: ≥ 0.8x the hand-written "
        "Starlette endpoint, ≥ 1.5x idiomatic FastAPI.",
    ]
    body = "\n".join(lines)
    print(body)
    if profiled is not None:
        print("\npy-spy, gateway under wrk:\n" + profiled)
    if not args.no_write:
        write_section("bench_gateway", body)


if __name__ == "__main__":
    main()
