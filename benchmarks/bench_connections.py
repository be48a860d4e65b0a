"""Issue 17's costs: the bounded HTTP protocol vs uvicorn's own, and the JSON depth scan.

1. The Gateway (GetShelf) served by `serve_until_stopped` twice, alike but for `limits`:
   `ConnectionLimits()` (runtime/connections.py) or None (uvicorn's httptools protocol as it
   is). wrk loads each in turn, with kept-alive connections and with `Connection: close` (a new
   connection, so a head timer, per request); the server's CPU time per request, best of 3
   alternating runs.
2. `check_depth` against `json.loads` on large bodies (runtime/jsoncodec/depth.py).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.example_package import free_port
from benchmarks.harness import cpu_seconds
from benchmarks.results import machine_line, write_section
from protoc_gen_restmon.runtime.jsoncodec.depth import check_depth

REPO = Path(__file__).resolve().parent.parent
URL_PATH = "/v1/shelves/fiction"
KINDS = ("unchanged", "bounded")

SERVER = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{root!r}, {repo!r}]
    import uvicorn
    import gen.bookstore.v1 as pb
    from examples.bookstore import make_service
    from protoc_gen_restmon.runtime.connections import ConnectionLimits
    from protoc_gen_restmon.runtime.gateway.app import Gateway
    from protoc_gen_restmon.runtime.serving import run, serve_until_stopped

    app = Gateway(services=[make_service(pb)])
    config = uvicorn.Config(
        app, host="127.0.0.1", port={port}, log_level="error", access_log=False, http="httptools"
    )
    limits = ConnectionLimits() if {kind!r} == "bounded" else None
    run(serve_until_stopped(config, limits=limits))
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


def wrk(process: subprocess.Popen[bytes], port: int, seconds: int, close: bool) -> float:
    """The server's CPU µs per request under wrk: steadier than requests/s on a loaded machine
    (a request waiting for a CPU costs the server nothing)."""
    headers = ["-H", "Connection: close"] if close else []
    before = cpu_seconds(process.pid)
    out = subprocess.run(
        ["wrk", "-t1", "-c10", f"-d{seconds}s", *headers, f"http://127.0.0.1:{port}{URL_PATH}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spent = cpu_seconds(process.pid) - before
    line = next(line for line in out.splitlines() if " requests in " in line)
    return spent / int(line.split()[0]) * 1e6


def protocol_costs(root: Path) -> dict[tuple[str, bool], float]:
    best: dict[tuple[str, bool], float] = {}
    for _ in range(3):
        for kind in KINDS:
            process, port = start(kind, root)
            try:
                wrk(process, port, 1, False)  # warm up
                for close in (False, True):
                    cost = wrk(process, port, 3, close)
                    best[kind, close] = min(best.get((kind, close), cost), cost)
            finally:
                process.terminate()
                process.wait()
    return best


def best_of(call: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return min(times)


def depth_bodies() -> dict[str, bytes]:
    records = [
        {"id": i, "name": "x" * 20, "tags": ["a", "b"], "nested": {"k": [1, 2, {"z": None}]}}
        for i in range(40_000)
    ]
    return {
        "40,000 records, 5 levels": json.dumps(records).encode(),
        "100,000 objects with escaped quotes and brackets in strings": json.dumps(
            [{"id": i, "s": 'a\\"[b'} for i in range(100_000)]
        ).encode(),
        "1,000,000 empty arrays": b"[" + b",".join([b"[]"] * 1_000_000) + b"]",
        "20,000 arrays 99 deep (the worst case under the limit)": (
            b"[" + b",".join([b"[" * 99 + b"]" * 99] * 20_000) + b"]"
        ),
    }


def protocol_section(costs: dict[tuple[str, bool], float]) -> str:
    rows = []
    for close, label in ((False, "kept alive"), (True, "`Connection: close`")):
        plain, bounded = costs["unchanged", close], costs["bounded", close]
        rows.append(
            f"| {label} | {plain:.0f} µs | {bounded:.0f} µs | {bounded - plain:+.0f} µs |"
            f" {bounded / plain:.2f}x |"
        )
    return "\n".join(
        [
            "## Bounded HTTP connections (issue 17): cost per request",
            "",
            "`python benchmarks/bench_connections.py`: the Gateway's `GET /v1/shelves/fiction`",
            "served by `serve_until_stopped` with `limits=ConnectionLimits()` (head timeout, head",
            "size, body rate, connection limit: runtime/connections.py) and with `limits=None`",
            "(uvicorn's httptools protocol unchanged); wrk -t1 -c10, 3 s per run, best of 3",
            "alternating runs. Measured: the server process's CPU time (user + system, from",
            "/proc) per request wrk completed, steadier than requests/s on this machine, which is",
            "shared by seven engineers and loaded (see the load average): small differences are",
            "noise.",
            machine_line(),
            "",
            "| connections | unchanged: CPU per request | bounded | difference | ratio |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )


def depth_section() -> str:
    rows = []
    for name, body in depth_bodies().items():
        loads, scan = best_of(lambda b=body: json.loads(b)), best_of(lambda b=body: check_depth(b))
        size = len(body) / 2**20
        rows.append(
            f"| {name} | {size:.1f} MiB | {loads * 1e3:.0f} ms | {scan * 1e3:.0f} ms |"
            f" {scan / loads:.2f}x |"
        )
    return "\n".join(
        [
            "## JSON depth scan before `json.loads` (issue 17)",
            "",
            "`python benchmarks/bench_connections.py`: `check_depth` (runtime/jsoncodec/depth.py,",
            "limit 100) vs `json.loads` on the same body, best of 5. A body with at most 100",
            "opening brackets costs two `bytes.count` calls. Same loaded machine as above.",
            machine_line(),
            "",
            "| body | size | json.loads | check_depth | scan / loads |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench_connections needs wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        protos = sorted(str(p) for p in (REPO / "protos").rglob("*.proto"))
        restmon = str(Path(sys.executable).with_name("restmon"))
        generate = [restmon, "generate", "-I", str(REPO / "protos"), "-o", str(root / "gen")]
        subprocess.run([*generate, *protos], check=True)
        costs = protocol_costs(root)
    for name, body in (
        ("bench_connections", protocol_section(costs)),
        ("bench_depth", depth_section()),
    ):
        write_section(name, body)
        print(body)


if __name__ == "__main__":
    main()
