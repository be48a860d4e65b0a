"""Generated monitor modules: their size, their import time and the time to load their descriptors.

Generates, with all three outputs, the example protos and (when `make corpus` has fetched it)
every googleapis package with an http rule in one protoc run (the file set of
tests/support/router_tools.py; by default only routes and monitor modules, as the dataclasses
of the whole corpus take many minutes: `--corpus-outputs dataclasses+routes+monitor`), then
reports:

- the bytes written, per output (dataclasses, `_restmon_routes.py`, `_restmon_monitor.py`);
- the import time of `gen.bookstore.v1._restmon_monitor` and of the aiplatform v1 one: each in
  a fresh interpreter, `runtime.specs`, `runtime.monitor.hooks` and the package's betterproto
  module (its parent) imported beforehand, median
  of N processes, with the bytecode cache warm (`.pyc` written by a first run) and cold
  (compiled from source every time);
- the time `DescriptorRegistry().add_module(module)` takes (every descriptor the package needs,
  dependencies included, loaded into a pool), in the same processes.

With `--baseline REV` the same is measured for the plugin and runtime of commit REV (exported
with `git archive`, put first on PYTHONPATH) and the report gives each figure as a ratio.

Usage: python benchmarks/bench_monitor_modules.py [--runs 20] [--baseline REV] [--no-corpus]
       [--corpus-outputs OUTPUTS] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus" / "google-proto-files"
LARGE = "google.cloud.aiplatform.v1"
LAUNCHER = "#!{python}\nfrom protoc_gen_restmon.plugin.main import main\nmain()\n"

# Run in a fresh interpreter: the module's own import, then loading its descriptors.
PROBE = """
import importlib, json, sys, time
sys.path.insert(0, sys.argv[1])
import protoc_gen_restmon.runtime.specs, protoc_gen_restmon.runtime.monitor.hooks
from protoc_gen_restmon.runtime.jsoncodec.registry import DescriptorRegistry
importlib.import_module(sys.argv[2].rpartition(".")[0])  # the betterproto package: not ours
start = time.perf_counter()
module = importlib.import_module(sys.argv[2])
imported = time.perf_counter()
DescriptorRegistry().add_module(module)
loaded = time.perf_counter()
print(json.dumps({"import": imported - start, "load": loaded - imported}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="fresh processes per figure")
    parser.add_argument("--baseline", help="a commit to compare with (its plugin and runtime)")
    parser.add_argument("--no-corpus", action="store_true", help="the example protos only")
    parser.add_argument("--corpus-outputs", default="routes+monitor", help="outputs= option")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    corpus = not args.no_corpus and CORPUS.is_dir()
    corpus_outputs = args.corpus_outputs if corpus else None
    current = measure(os.environ.get("PYTHONPATH", ""), args.runs, corpus_outputs)
    if args.json:  # the baseline's half, run by the parent below
        print(json.dumps(current))
        return
    baseline = run_baseline(args.baseline, args.runs, corpus_outputs) if args.baseline else None
    report = render(current, baseline, args.baseline, args.runs)
    print(report)
    if args.write:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from results import write_section

        write_section("monitor_modules", report)


def run_baseline(rev: str, runs: int, corpus_outputs: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench_baseline_") as scratch:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", rev, "protoc_gen_restmon", "templates"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", scratch], input=archive, check=True)
        flags = ["--runs", str(runs), "--json"]
        flags += ["--corpus-outputs", corpus_outputs] if corpus_outputs else ["--no-corpus"]
        env = {**os.environ, "PYTHONPATH": scratch}
        out = subprocess.run(
            [sys.executable, __file__, *flags], env=env, capture_output=True, text=True
        )
        if out.returncode:
            raise SystemExit(f"baseline run failed:\n{out.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
        return result


def measure(pythonpath: str, runs: int, corpus_outputs: str | None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else dict(os.environ)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_monitor_modules_") as scratch_name:
        scratch = Path(scratch_name)
        example = scratch / "example"
        files = sorted(
            str(p.relative_to(REPO / "protos")) for p in (REPO / "protos").rglob("*.proto")
        )
        generate(example, [REPO / "protos"], files, env, scratch, "dataclasses+routes+monitor")
        results["example"] = sizes(example / "gen")
        results["gen.bookstore.v1"] = timings(example, "gen.bookstore.v1", env, runs)
        if corpus_outputs:
            tree = scratch / "corpus"
            generate(tree, [CORPUS], corpus_files(), env, scratch, corpus_outputs)
            results["corpus"] = sizes(tree / "gen")
            results[f"gen.{LARGE}"] = timings(tree, f"gen.{LARGE}", env, runs)
    return results


def corpus_files() -> list[str]:
    """Every .proto of each corpus directory mentioning google.api.http, google/protobuf aside
    (protoc cannot compile its editions)."""
    listed = subprocess.run(
        ["grep", "-rl", "--include=*.proto", "google.api.http", str(CORPUS)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    directories = sorted({Path(p).parent for p in listed} - {CORPUS / "google" / "protobuf"})
    return sorted(str(p.relative_to(CORPUS)) for d in directories for p in d.glob("*.proto"))


def generate(
    root: Path,
    includes: list[Path],
    files: list[str],
    env: dict[str, str],
    scratch: Path,
    outputs: str,
) -> None:
    from protoc_gen_restmon.cli import include_paths  # the same in both trees

    out = root / "gen"
    out.mkdir(parents=True)
    (out / "__init__.py").touch()
    launcher = scratch / "protoc-gen-restmon"
    launcher.write_text(LAUNCHER.format(python=sys.executable))
    launcher.chmod(0o755)
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        *(f"-I{p}" for p in include_paths()),  # first, as tests/support/protoc_tools.py does
        *(f"-I{p}" for p in includes),
        f"--plugin=protoc-gen-restmon={launcher}",
        f"--restmon_out={out}",
        f"--restmon_opt=outputs={outputs},duplicate_routes=warn",
        *files,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=includes[0])
    if result.returncode:
        raise SystemExit(f"protoc failed: {result.stderr[-3000:]}")


def sizes(out: Path) -> dict[str, int]:
    totals = {"dataclasses": 0, "routes": 0, "monitor": 0, "files": 0}
    for path in out.rglob("*.py"):
        kind = {"_restmon_routes.py": "routes", "_restmon_monitor.py": "monitor"}.get(
            path.name, "dataclasses"
        )
        totals[kind] += path.stat().st_size
        totals["files"] += 1
    return totals


def timings(root: Path, package: str, env: dict[str, str], runs: int) -> dict[str, float]:
    module = f"{package}._restmon_monitor"
    probe = [sys.executable, "-c", PROBE, str(root), module]
    subprocess.run(probe, env=env, check=True, capture_output=True)  # writes the .pyc files
    warm = [
        json.loads(subprocess.run(probe, env=env, capture_output=True, check=True).stdout)
        for _ in range(runs)
    ]
    cold = []
    for _ in range(runs):
        for cache in root.rglob("__pycache__"):
            shutil.rmtree(cache)
        cold.append(
            json.loads(subprocess.run(probe, env=env, capture_output=True, check=True).stdout)
        )
    source = root.joinpath(*module.split(".")).with_suffix(".py")
    return {
        "import_warm_ms": 1000 * statistics.median(r["import"] for r in warm),
        "import_cold_ms": 1000 * statistics.median(r["import"] for r in cold),
        "load_ms": 1000 * statistics.median(r["load"] for r in warm),
        "lines": float(len(source.read_text().splitlines())),
        "bytes": float(source.stat().st_size),
    }


def render(
    current: dict[str, Any], baseline: dict[str, Any] | None, rev: str | None, runs: int
) -> str:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from results import machine_line

    lines = [
        "## Generated monitor modules: size and import time",
        "",
        f"`python benchmarks/bench_monitor_modules.py --runs {runs}"
        + (f" --baseline {rev}`" if rev else "`")
        + f" ({'against commit ' + rev + ', the shape before' if rev else 'this tree only'}).",
        machine_line(),
        "",
        "| generated tree | output | bytes | " + ("before | ratio |" if baseline else ""),
        "|---|---|---|" + ("---|---|" if baseline else ""),
    ]
    for tree in ("example", "corpus"):
        if tree not in current:
            continue
        for kind in ("dataclasses", "routes", "monitor"):
            if not current[tree][kind]:
                continue
            lines.append(_row([tree, kind], current[tree][kind], baseline and baseline[tree][kind]))
        total = sum(current[tree][k] for k in ("dataclasses", "routes", "monitor"))
        before = baseline and sum(baseline[tree][k] for k in ("dataclasses", "routes", "monitor"))
        lines.append(_row([tree, "**total**"], total, before))
    lines += [
        "",
        "| module | figure | now | " + ("before | ratio |" if baseline else ""),
        "|---|---|---|" + ("---|---|" if baseline else ""),
    ]
    for package in (p for p in current if p.startswith("gen.")):
        for figure in ("lines", "bytes", "import_warm_ms", "import_cold_ms", "load_ms"):
            old = baseline[package][figure] if baseline and package in baseline else None
            lines.append(
                _row([f"`{package}._restmon_monitor`", figure], current[package][figure], old)
            )
    lines += ["", *NOTES]
    return "\n".join(lines) + "\n"


NOTES = [
    "- `import_warm_ms`: the module's own import (its package's betterproto module, "
    "`runtime.specs` and `runtime.monitor.hooks` already imported), `.pyc` present; "
    "`import_cold_ms`: compiled from source each time; `load_ms`: "
    "`DescriptorRegistry().add_module(module)`, every file the package needs loaded into a "
    "pool, which now includes finding the imports (other packages' monitor modules, the "
    "protobuf runtime's `_pb2` modules). Medians of fresh processes.",
    "- The corpus tree holds routes and monitor modules (one protoc run, `--corpus-outputs` "
    "changes it): the dataclasses are the same in both shapes (the example's are "
    "byte-identical), and generating them for the whole corpus takes many minutes.",
]


def _row(cells: list[str], now: float, before: float | None) -> str:
    def fmt(x: float) -> str:
        return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"

    extra = f" {fmt(before)} | {now / before:.2f}x |" if before else ""
    return "| " + " | ".join(cells) + f" | {fmt(now)} |" + extra


if __name__ == "__main__":
    main()
