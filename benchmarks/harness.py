"""What the end-to-end benchmarks share: servers as subprocesses, their CPU time, wrk, py-spy."""

from __future__ import annotations

import collections
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (/proc/PID/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and its children (a `restmon serve --workers N` parent's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(int(child) for child in children)]


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and its children, as `cpu_seconds` counts them."""
    return sum(cpu_seconds(each) for each in process_tree(pid))


@contextmanager
def running(command: list[str], port: int) -> Iterator[int]:
    """`command` as a subprocess (its pid), once it accepts connections on `port`."""
    process = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{command[:3]} did not start") from None
                time.sleep(0.1)
        yield process.pid
    finally:
        process.terminate()
        process.wait(10)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wrk(url: str, threads: int, connections: int, seconds: float) -> tuple[float, int]:
    """(requests/s, requests) of a wrk run; every answer must be a 2xx."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rate = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    total = next(line for line in out.splitlines() if " requests in " in line)
    return float(rate.split()[1]), int(total.split()[0])


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording a process's stacks (native frames too) into `out` for `seconds`, in
    collapsed form (`frame;frame;… count` lines); wait for it when the load is over."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    options = ["--format", "raw", "--rate", "250", "--native", "--duration", str(seconds)]
    return subprocess.Popen([spy, "record", "--pid", str(pid), *options, "--output", str(out)])


def summarize(collapsed: str, top: int = 30) -> str:
    """Inclusive and self share of the samples per Python function, from py-spy's collapsed
    stacks (`frame;frame;… count` lines)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        # Native frames (py-spy --native) count for the Python frame that called them.
        frames = [_short(frame) for frame in stack.split(";") if ".py:" in frame] or ["(native)"]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    rows = ["| function | inclusive % | self % |", "|---|---|---|"]
    for frame, samples in inclusive.most_common(top):
        share, own_share = 100 * samples / total, 100 * own[frame] / total
        rows.append(f"| `{frame}` | {share:.1f} | {own_share:.1f} |")
    return "\n".join([f"{total} samples.", "", *rows])


def _short(frame: str) -> str:
    """`get_shelf (examples/bookstore.py:63)` -> `get_shelf (bookstore.py)`."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})" if where else name
