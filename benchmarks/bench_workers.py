"""`restmon serve --workers N`: throughput with 1 and 2 worker processes in front of one upstream.

Processes on loopback: a grpclib server hosting the example Bookstore (examples/bookstore.py,
bench_proxy's upstream), and two `restmon serve` in front of it, one with `--workers 1` (this
process serves) and one with `--workers 2` (two worker processes on the port its parent
bound); each once without a monitor and once recording every call into SQLite (`--db`).
wrk -t2 -c50 `GET /v1/shelves/fiction/books/dune` against each, interleaved (A B B A after a
warm-up of each), the mean of each one's two runs; the CPU seconds each side used during its
runs (a gateway's: its workers' too) say where the time went. Written to benchmarks/RESULTS.md
between the `workers` markers.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_proxy import UPSTREAM, http_stack
from benchmarks.example_package import free_port, generate_example
from benchmarks.harness import cpu_seconds, process_tree, running, wrk
from benchmarks.results import machine_line, write_section

REPO = Path(__file__).resolve().parent.parent
URL_PATH = "/v1/shelves/fiction/books/dune"
CONCURRENCY, SECONDS = 50, 5
WORKERS = (1, 2)


@dataclass
class Gateway:
    workers: int
    db: bool
    pid: int
    port: int
    rates: list[float]
    cpu: float = 0.0  # seconds, gateway processes, during the measured runs
    upstream_cpu: float = 0.0
    per_process: dict[int, float] = field(default_factory=dict)  # pid -> seconds

    @property
    def name(self) -> str:
        return f"--workers {self.workers}" + (" --db sqlite" if self.db else "")


def tree_cpu(pid: int) -> dict[int, float]:
    return {each: cpu_seconds(each) for each in process_tree(pid)}


def measure(gateway: Gateway, upstream_pid: int) -> None:
    before, upstream_before = tree_cpu(gateway.pid), cpu_seconds(upstream_pid)
    rate, _ = wrk(f"http://127.0.0.1:{gateway.port}{URL_PATH}", 2, CONCURRENCY, SECONDS)
    gateway.rates.append(rate)
    for pid, seconds in tree_cpu(gateway.pid).items():
        used = seconds - before.get(pid, seconds)
        gateway.cpu += used
        gateway.per_process[pid] = gateway.per_process.get(pid, 0.0) + used
    gateway.upstream_cpu += cpu_seconds(upstream_pid) - upstream_before


def split(gateway: Gateway) -> str:
    """How the CPU time was shared among a gateway's processes (parent first), in %."""
    shares = [100 * used / gateway.cpu for used in gateway.per_process.values()]
    return " / ".join(f"{share:.0f}" for share in shares)


def command(root: Path, upstream_port: int, port: int, workers: int, db: Path | None) -> list[str]:
    restmon = str(Path(sys.executable).with_name("restmon"))
    return [
        *(restmon, "serve", "--upstream", f"127.0.0.1:{upstream_port}", "--package", "gen"),
        *("--path", str(root), "--port", str(port), "--log-level", "error"),
        *("--workers", str(workers)),
        *(() if db is None else ("--db", f"sqlite:///{db}")),
    ]


def report(pairs: list[tuple[Gateway, Gateway]]) -> str:
    rows = [
        "| gateway | requests/s | gateway CPU s per 1,000 requests | upstream CPU s per 1,000 "
        "| gateway CPU by process, % (parent first) |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    for pair in pairs:
        for gateway in pair:
            requests = statistics.mean(gateway.rates) * SECONDS * len(gateway.rates) / 1000
            rows.append(
                f"| `{gateway.name}` | {statistics.mean(gateway.rates):,.0f} "
                f"({', '.join(f'{r:,.0f}' for r in gateway.rates)}) | "
                f"{gateway.cpu / requests:.3f} | {gateway.upstream_cpu / requests:.3f} | "
                f"{split(gateway)} |"
            )
        one, two = pair
        ratio = statistics.mean(two.rates) / statistics.mean(one.rates)
        ratios.append(f"{'with' if one.db else 'without'} a monitor {ratio:.2f}x")
    return "\n".join(
        [
            "## `restmon serve --workers N` (bench_workers.py)",
            "",
            machine_line(),
            f"HTTP stack: {http_stack()}. wrk -t2 -c{CONCURRENCY}, {SECONDS} s per run, "
            "A B B A after a warm-up; the upstream is one grpclib process "
            "(examples/bookstore.py), wrk and every server share the machine's CPUs.",
            "",
            *rows,
            "",
            f"2 workers / 1 worker: {'; '.join(ratios)}.",
            "",
            "A second worker can only add what free cores allow: here wrk, the upstream and "
            "the gateways share the CPUs, and the upstream (pure-Python HTTP/2) spends more "
            "per request than the gateway. The gateway's CPU per request with 2 workers says "
            "what each worker costs; the load average says what else ran.",
        ]
    )


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench_workers needs wrk (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        generate_example(root)
        upstream_port = free_port()
        upstream = UPSTREAM.format(root=str(root), repo=str(REPO), port=upstream_port)
        upstream_pid = stack.enter_context(running([sys.executable, "-c", upstream], upstream_port))
        pairs = []
        for db in (False, True):
            pair = []
            for workers in WORKERS:
                port = free_port()
                store = root / f"calls-{workers}.db" if db else None
                pid = stack.enter_context(
                    running(command(root, upstream_port, port, workers, store), port)
                )
                pair.append(Gateway(workers, db, pid, port, []))
            one, two = pair
            for gateway in pair:  # warm up
                wrk(f"http://127.0.0.1:{gateway.port}{URL_PATH}", 2, CONCURRENCY, 2)
            for gateway in (one, two, two, one):
                measure(gateway, upstream_pid)
            pairs.append((one, two))
    body = report(pairs)
    write_section("workers", body)
    print(body)


if __name__ == "__main__":
    main()
