"""benchmarks/RESULTS.md: each benchmark owns one section between its own markers."""

from __future__ import annotations

import os
import platform
import sys
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine_line() -> str:
    load = os.getloadavg()[0]
    return (
        f"Date {date.today()}, {len(os.sched_getaffinity(0))} usable CPUs, Python "
        f"{sys.version.split()[0]}, {platform.machine()}, load average {load:.2f} at the start."
    )


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace the section `name` (between its markers) or append it."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
