"""What the openapi output adds to `restmon generate` on aiplatform v1 (target: at most 1.10x).

Runs `restmon generate -I corpus -o OUT google/cloud/aiplatform/v1/*.proto` with the default
outputs and with `--openapi` (the same plus the package's OpenAPI document), interleaved (so a
change in machine load hits both alike), each in an empty directory, N times; reports the median
wall time of each and their ratio, checks that only the second wrote
`google/cloud/aiplatform/v1/openapi.json`, and rewrites the "bench_openapi" section of
benchmarks/RESULTS.md.

Usage: python benchmarks/bench_openapi.py [--repeat N] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.results import machine_line, write_section  # noqa: E402

CORPUS = REPO / "corpus" / "google-proto-files"
TARGET = "google/cloud/aiplatform/v1"
DOCUMENT = f"{TARGET}/openapi.json"
CASES = {"default outputs": [], "with --openapi": ["--openapi"]}
TARGET_RATIO = 1.10


def restmon() -> list[str]:
    """The installed `restmon` script beside this interpreter, or the same entry point."""
    script = Path(sys.executable).with_name("restmon")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from protoc_gen_restmon.cli import main; main()"]


def generate(flags: list[str], files: list[str], out: Path) -> float:
    command = [*restmon(), "generate", "-I", str(CORPUS), "-o", str(out), *flags, *files]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=CORPUS, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"restmon generate {' '.join(flags)} failed:\n{result.stderr[-3000:]}")
    if (out / DOCUMENT).exists() != bool(flags):
        sys.exit(f"{out / DOCUMENT}: expected only with --openapi")
    return seconds


def describe(document: Path) -> tuple[int, int]:
    """The document's size in bytes and its number of operations."""
    text = document.read_text()
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    paths = json.loads(text)["paths"].values()
    return len(text.encode()), sum(1 for item in paths for key in item if key in methods)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per case (median kept)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"{CORPUS} is missing: run `make corpus` first")
    files = sorted(str(p.relative_to(CORPUS)) for p in (CORPUS / TARGET).glob("*.proto"))
    intro = machine_line()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    document = Path()
    with tempfile.TemporaryDirectory(prefix="bench_openapi_") as scratch:
        for i in range(args.repeat):
            for name, flags in CASES.items():
                out = Path(scratch) / f"{i}-{len(flags)}"
                times[name].append(generate(flags, files, out))
                print(f"{name:<16} run {i + 1}: {times[name][-1]:.2f} s", flush=True)
                if flags:
                    document = out / DOCUMENT
        size, operations = describe(document)
    body = report(intro, times, len(files), args.repeat, size, operations)
    print(f"\n{body}")
    if not args.no_write:
        write_section("bench_openapi", body)
        print("updated benchmarks/RESULTS.md")


def report(
    intro: str,
    times: dict[str, list[float]],
    n_files: int,
    repeat: int,
    size: int,
    operations: int,
) -> str:
    base, with_openapi = (statistics.median(times[name]) for name in CASES)
    ratio = with_openapi / base
    rows = [
        f"| {name} | {statistics.median(runs):.2f} | {min(runs):.2f} | {max(runs):.2f} |"
        for name, runs in times.items()
    ]
    verdict = "within" if ratio <= TARGET_RATIO else "over"
    return "\n".join(
        [
            "## OpenAPI output: what it adds to `restmon generate`",
            "",
            f"`python benchmarks/bench_openapi.py` on `{TARGET}/*.proto` ({n_files} files),"
            f" {repeat} interleaved runs of each case, every run in an empty directory.",
            intro,
            "The machine is shared (other sessions build and test on it): compare the ratio,"
            " not the seconds.",
            "",
            "| `restmon generate` | median wall s | min | max |",
            "|---|---|---|---|",
            *rows,
            "",
            f"Ratio of the medians: **{ratio:.3f}x** ({verdict} the {TARGET_RATIO:.2f}x target)."
            f" The document: {size / 1024:.0f} KiB, {operations} operations.",
        ]
    )


if __name__ == "__main__":
    main()
