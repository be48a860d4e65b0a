"""The monitor's modules import alone, and none imports another that imports it back.

Each module of runtime/monitor is imported in a fresh interpreter, by itself; and the graph of
their `protoc_gen_restmon.runtime.monitor…` imports (at module level, inside functions and
under TYPE_CHECKING alike) has no cycle. An import names the module it imports: importing
`…monitor.stores.sql` imports the package `…monitor.stores` first, as any submodule import
does, and that is not an edge of the graph.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.protoc_tools import REPO

PACKAGE = "protoc_gen_restmon.runtime.monitor"
ROOT = REPO / "protoc_gen_restmon" / "runtime" / "monitor"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imported(path: Path) -> set[str]:
    """The monitor modules `path` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import name`: the submodule pkg.name when there is one, else pkg.
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return {name for name in found if name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of `graph` as the path that closes it (["a", "b", "a"]), or [] when there is none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        path.append(node)
        for successor in sorted(graph.get(node, ())):
            cycle = visit(successor)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return []

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return []


CYCLES = [
    pytest.param({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"], id="two"),
    pytest.param({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"], id="behind-a-path"),
    pytest.param({"a": {"a"}}, ["a", "a"], id="self"),
    pytest.param({"a": {"b", "c"}, "b": {"c"}, "c": set()}, [], id="diamond"),
]


@pytest.mark.parametrize(("graph", "cycle"), CYCLES)
def test_find_cycle_finds_the_cycle_or_none(graph: dict[str, set[str]], cycle: list[str]) -> None:
    assert find_cycle(graph) == cycle


def test_monitor_modules_import_one_another_without_a_cycle() -> None:
    graph = {name: imported(path) for name, path in MODULES.items()}
    assert find_cycle(graph) == []
    # The graph is the real one: the Monitor reaches its adapters, which do not reach it.
    assert f"{PACKAGE}.grpclib_events" in graph[f"{PACKAGE}.monitor"]
    assert f"{PACKAGE}.call" in graph[f"{PACKAGE}.grpclib_events"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_monitor_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
