"""The gateway's `GET /openapi.json`: what building the document costs (once, on the first
request) and what answering it costs afterwards, against an API call in the same run.

- in process: the ASGI app called directly, N requests in a loop (no HTTP), median and p99;
- over HTTP: uvicorn (httptools) in a thread, one keep-alive httpx client, N requests; and,
  when `wrk` is installed, `wrk -t1 -c1 -d4s --latency` (its median: a C client, so the figure
  is the server's far more than httpx's);
- the baseline in both: `GET /v1/shelves/fiction` (GetShelf, a small JSON answer).

With `--corpus`, also the build time of google/cloud/aiplatform/v1's document (proxy mode),
generated from the googleapis corpus (`make corpus`).

Usage: python benchmarks/bench_openapi_serving.py [--requests N] [--corpus] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.example_package import REPO, free_port, generate_example
from benchmarks.results import machine_line, write_section

CORPUS = REPO / "corpus" / "google-proto-files"


async def asgi_get(app: Any, path: str) -> int:
    """One GET through the ASGI interface; the response status."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if sent:
            await done.wait()
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    return int(sent[0]["status"])


def timings(run: Callable[[], object], n: int) -> list[float]:
    """Seconds per call of `run`, n calls."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        out.append(time.perf_counter() - start)
    return out


def summary(samples: list[float]) -> tuple[float, float]:
    """(median, p99) in microseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99)] * 1e6


def in_process(app: Any, n: int) -> dict[str, tuple[float, float]]:
    loop = asyncio.new_event_loop()
    try:

        def get(path: str) -> Callable[[], object]:
            return lambda: loop.run_until_complete(asgi_get(app, path))

        for path in ("/openapi.json", "/v1/shelves/fiction"):
            assert loop.run_until_complete(asgi_get(app, path)) == 200, path
        return {
            "openapi": summary(timings(get("/openapi.json"), n)),
            "api": summary(timings(get("/v1/shelves/fiction"), n)),
        }
    finally:
        loop.close()


def over_http(app: Any, n: int) -> dict[str, tuple[float, float]]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(50):  # warm up the connection and both paths
                client.get("/openapi.json")
                client.get("/v1/shelves/fiction")
            return {
                "openapi": summary(timings(lambda: client.get("/openapi.json"), n)),
                "api": summary(timings(lambda: client.get("/v1/shelves/fiction"), n)),
            }
    finally:
        server.should_exit = True
        thread.join()


def wrk_medians(app: Any) -> dict[str, str]:
    """`wrk`'s median latency per path (one connection, 4 s each), under uvicorn."""
    if shutil.which("wrk") is None:
        return {}
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    medians = {}
    try:
        for name, path in (("openapi", "/openapi.json"), ("api", "/v1/shelves/fiction")):
            url = f"http://127.0.0.1:{port}{path}"
            command = ["wrk", "-t1", "-c1", "-d4s", "--latency", url]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            medians[name] = next(
                line.split("%", 1)[1].strip() for line in out.splitlines() if "50%" in line
            )
    finally:
        server.should_exit = True
        thread.join()
    return medians


def first_request(make: Callable[[], Any]) -> tuple[float, float, float, int]:
    """(gateway construction s, first /openapi.json s, second s, document bytes)."""
    start = time.perf_counter()
    app = make()
    built = time.perf_counter()
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(asgi_get(app, "/openapi.json")) == 200
        first = time.perf_counter()
        loop.run_until_complete(asgi_get(app, "/openapi.json"))
        second = time.perf_counter()
    finally:
        loop.close()
    return built - start, first - built, second - first, len(app.api.json_bytes(""))


def corpus_gateway(root: Path) -> Callable[[], Any]:
    """google/cloud/aiplatform/v1 generated (with its imports), as a proxy-mode Gateway."""
    from protoc_gen_restmon.runtime.gateway.app import Gateway

    package = CORPUS
    files = sorted(str(p) for p in (package / "google/cloud/aiplatform/v1").glob("*.proto"))
    restmon = Path(sys.executable).with_name("restmon")
    command = [str(restmon), "generate", "-I", str(package), "-o", str(root / "cgen"), *files]
    subprocess.run(command, check=True)
    sys.path.insert(0, str(root))
    return lambda: Gateway(upstream="127.0.0.1:9", packages=["cgen.google.cloud.aiplatform.v1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--corpus", action="store_true")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()
    from examples.bookstore import make_service
    from protoc_gen_restmon.runtime.gateway.app import Gateway

    lines = [machine_line(), ""]
    with tempfile.TemporaryDirectory() as scratch:
        pb = generate_example(Path(scratch))
        make = lambda: Gateway(services=[make_service(pb)])  # noqa: E731
        builds = [("bookstore (examples)", first_request(make))]
        if args.corpus:
            builds.append(
                ("google.cloud.aiplatform.v1", first_request(corpus_gateway(Path(scratch))))
            )
        app = make()
        local = in_process(app, args.requests)
        http = over_http(app, max(args.requests // 4, 200))
        wrk = wrk_medians(app)
    lines += [
        "| gateway | construction | first /openapi.json (builds) | second | document |",
        "|---|---|---|---|---|",
    ]
    for name, (construct, first, second, size) in builds:
        lines.append(
            f"| {name} | {construct * 1e3:.1f} ms | {first * 1e3:.1f} ms | "
            f"{second * 1e6:.0f} µs | {size / 1024:.0f} KiB |"
        )
    lines += [
        "",
        "| after the first request | /openapi.json median (p99) | GetShelf median (p99) | ratio |",
    ]
    lines.append("|---|---|---|---|")
    for name, result in (("in process (ASGI)", local), ("HTTP (uvicorn, httpx)", http)):
        (om, op), (am, ap) = result["openapi"], result["api"]
        lines.append(
            f"| {name} | {om:.0f} µs ({op:.0f}) | {am:.0f} µs ({ap:.0f}) | {om / am:.2f} |"
        )
    if wrk:
        lines.append(f"| HTTP (uvicorn, wrk -c1) | {wrk['openapi']} | {wrk['api']} | |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("openapi-serving", "## OpenAPI document serving\n\n" + text)


if __name__ == "__main__":
    main()
