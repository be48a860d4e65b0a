"""The whole googleapis corpus generated in one run, all three outputs, and every generated
package imported (`make corpus`): betterproto's dataclasses, route and monitor modules.

One `restmon generate` over every .proto file (google/protobuf aside: that is the protobuf
library's own, in an edition newer than grpc_tools' protoc knows, and its well-known types come
from grpc_tools), then the packages are imported in a few fresh interpreters, a chunk each
(a package that fails must not hide the others, and 634 packages in one process would not say
which one broke the next).

Time (2 CPUs shared with other work, load 3-7): generation 21 min, imports 2.6 min, the route
listing 51 s; the generation is ~14 CPU-minutes, so about 7 min on two idle CPUs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.protoc_tools import REPO

CORPUS = REPO / "corpus" / "google-proto-files"
RESTMON = Path(sys.executable).with_name("restmon")
CHUNKS = 8  # interpreters, two at a time: a failing import is reported with its package

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.slow,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="googleapis corpus absent: run `make corpus`"),
]

# Imports each module named on stdin (one per line) and prints {module: "Type: message"} for
# those that fail.
IMPORTER = """\
import importlib, json, sys
failed = {}
for name in sys.stdin.read().split():
    try:
        importlib.import_module(name)
    except Exception as err:
        failed[name] = f"{type(err).__name__}: {err}"
print(json.dumps(failed))
"""


def corpus_files() -> list[str]:
    return sorted(
        str(path.relative_to(CORPUS))
        for top in ("google", "grafeas")
        for path in (CORPUS / top).rglob("*.proto")
        if not path.relative_to(CORPUS).is_relative_to("google/protobuf")
    )


def generate_corpus(out: Path) -> subprocess.CompletedProcess[str]:
    """`restmon generate` over the whole corpus into `out` (a package named `gen`)."""
    return subprocess.run(
        [
            str(RESTMON),
            "generate",
            "-I",
            str(CORPUS),
            "-o",
            str(out),
            # googleapis has same-shape routes in different APIs (issue 13, item 8).
            "--opt=duplicate_routes=warn",
            # Without black: two thirds of the generation's CPU. Imports do not depend on layout;
            # black's output is compared with betterproto's on a sample (test_dataclasses).
            "--opt=format=none",
            *corpus_files(),
        ],
        cwd=CORPUS,
        capture_output=True,
        text=True,
        check=False,
    )


def generated_modules(root: Path, package: str = "gen") -> list[str]:
    """Every module the run wrote, as dotted names under `package`: each package's dataclass
    module (a non-empty __init__.py: parent directories get empty ones), route and monitor
    modules."""
    names = []
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if path.name == "__init__.py":
            if path.stat().st_size:
                names.append(".".join(parts[:-1]))
        else:
            names.append(".".join(parts))
    return names


def import_failures(root: Path, modules: list[str], chunks: int = CHUNKS) -> dict[str, str]:
    """module -> "Type: message" for each of `modules` that does not import (from `root`)."""

    def run(chunk: list[str]) -> dict[str, str]:
        result = subprocess.run(
            [sys.executable, "-c", IMPORTER],
            input="\n".join(chunk),
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            return {f"chunk starting at {chunk[0]}": result.stderr[-2000:]}
        failed: dict[str, str] = json.loads(result.stdout)
        return failed

    parts = [modules[i::chunks] for i in range(chunks)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        found: dict[str, str] = {}
        for failed in pool.map(run, [p for p in parts if p]):
            found.update(failed)
    return found


@pytest.fixture(scope="module", name="corpus_root")
def fixture_corpus_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("corpus_all")
    result = generate_corpus(root / "gen")
    assert result.returncode == 0, result.stderr[-5000:]
    yield root


def test_every_generated_package_imports(corpus_root: Path) -> None:
    modules = generated_modules(corpus_root)
    packages = [m for m in modules if not m.rsplit(".", 1)[-1].startswith("_restmon_")]

    failures = import_failures(corpus_root, modules)

    assert failures == {}
    assert len(packages) > 600  # 634 with google-proto-files 6.0.1
    assert "gen.google.actions.sdk.v2.conversation" in packages  # a message named List
    assert "gen.google.cloud.bigquery.v2" in packages  # comments with "\N"


def test_routes_lists_the_whole_corpus(corpus_root: Path) -> None:
    listed = subprocess.run(
        [str(RESTMON), "routes", "gen"], cwd=corpus_root, capture_output=True, text=True
    )

    assert listed.returncode == 0, listed.stderr[-2000:]
    assert listed.stderr == ""
    assert len(listed.stdout.splitlines()) > 15_000  # 15,328 with google-proto-files 6.0.1
