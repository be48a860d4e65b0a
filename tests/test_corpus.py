"""Real protos nobody here wrote: every googleapis package with http rules (`make corpus`)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.api import annotations_pb2
from google.protobuf.descriptor_pb2 import FileDescriptorSet

from protoc_gen_restmon.runtime.jsoncodec.registry import DescriptorRegistry
from tests.support.protoc_tools import REPO, protoc

CORPUS = REPO / "corpus" / "google-proto-files"
OPTIONS = "outputs=routes+monitor,duplicate_routes=warn"
ANNOTATION = re.compile(r"^\s*option\s*\(google\.api\.http\)", re.MULTILINE)

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.slow,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="googleapis corpus absent: run `make corpus`"),
]


@dataclass(frozen=True)
class PackageRun:
    directory: str
    returncode: int
    stderr: str
    rules: int  # counted from the descriptors, independently of the plugin
    annotated_in_text: bool


def candidate_directories() -> list[Path]:
    """Directories with a .proto file that mentions google.api.http (in code or comments)."""
    found = subprocess.run(
        ["grep", "-rl", "--include=*.proto", "google.api.http", str(CORPUS)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted({Path(p).parent for p in found})


def count_rules(descriptor_set: Path, files: set[str]) -> int:
    """Rules plus additional bindings of every method declared in `files`."""
    fds = FileDescriptorSet.FromString(descriptor_set.read_bytes())
    count = 0
    for file in fds.file:
        if file.name not in files:
            continue
        for service in file.service:
            for method in service.method:
                if method.options.HasExtension(annotations_pb2.http):
                    rule = method.options.Extensions[annotations_pb2.http]
                    count += 1 + len(rule.additional_bindings)
    return count


def generate(directory: Path, out: Path, scratch: Path) -> PackageRun:
    files = sorted(str(p.relative_to(CORPUS)) for p in directory.glob("*.proto"))
    relative = str(directory.relative_to(CORPUS))
    descriptors = scratch / (relative.replace("/", "_") + ".pb")
    plugin = Path(sys.executable).with_name("protoc-gen-restmon")
    result = protoc(
        [
            f"-I{CORPUS}",
            f"--plugin=protoc-gen-restmon={plugin}",
            f"--restmon_out={out}",
            f"--restmon_opt={OPTIONS}",
            f"--descriptor_set_out={descriptors}",
            "--include_imports",
            *files,
        ]
    )
    annotated = any(ANNOTATION.search(p.read_text()) for p in directory.glob("*.proto"))
    rules = count_rules(descriptors, set(files)) if result.returncode == 0 else 0
    return PackageRun(relative, result.returncode, result.stderr, rules, annotated)


@pytest.fixture(scope="module")
def corpus_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, list[PackageRun]]]:
    root = tmp_path_factory.mktemp("corpus")
    out, scratch = root / "gen", root / "scratch"
    out.mkdir()
    scratch.mkdir()
    (out / "__init__.py").touch()
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda d: generate(d, out, scratch), candidate_directories()))
    yield root, runs


def test_every_package_with_http_rules_generates(
    corpus_runs: tuple[Path, list[PackageRun]],
) -> None:
    _, runs = corpus_runs
    failed = [r for r in runs if r.returncode != 0]
    # A directory protoc itself cannot compile (google/protobuf: a newer edition than this protoc
    # knows) is acceptable only if it has no http rule at all.
    ours = [r for r in failed if r.annotated_in_text or "--restmon_out" in r.stderr]
    assert not ours, "\n".join(f"{r.directory}: {r.stderr[:500]}" for r in ours)
    with_rules = [r for r in runs if r.rules]
    assert len(with_rules) > 400  # the corpus has ~478 such packages


def test_routes_lists_every_binding(corpus_runs: tuple[Path, list[PackageRun]]) -> None:
    root, runs = corpus_runs
    restmon = Path(sys.executable).with_name("restmon")
    listed = subprocess.run(
        [str(restmon), "routes", "gen"], cwd=root, capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    lines = listed.stdout.splitlines()
    expected = sum(r.rules for r in runs)
    assert len(lines) == expected
    for line in lines:  # `GET /v1/{name=shelves/*} bookstore.v1.Bookstore/GetBook`
        http_method, template, target = line.split(" ")
        assert http_method and template.startswith("/") and "/" in target


def test_every_monitor_module_finds_its_imports(
    corpus_runs: tuple[Path, list[PackageRun]],
) -> None:
    """One protoc run per directory: each module embeds its own package's files and finds the
    rest by name, in the modules other runs wrote (google/api, google/iam/v1, …) or in the
    protobuf runtime (the well-known types, google/rpc, google/type). All of them fit in one
    pool: no file is found in two different versions."""
    root, _ = corpus_runs
    modules = sorted(
        ".".join(path.relative_to(root).with_suffix("").parts)
        for path in (root / "gen").rglob("_restmon_monitor.py")
    )
    assert len(modules) > 400
    registry = DescriptorRegistry()
    sys.path.insert(0, str(root))
    try:
        for name in modules:
            module = importlib.import_module(name)
            registry.add_module(module)
            own = {file for file, _ in module.FILE_DESCRIPTORS}
            assert set(module.FILES) <= own, name
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "gen" or m.startswith("gen.")]:
            del sys.modules[name]
    registry.message_class("google.cloud.aiplatform.v1.Endpoint")
