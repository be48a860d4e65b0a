"""Test helpers: run protoc for real and capture the CodeGeneratorRequest it sends a plugin."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.compiler.plugin_pb2 import CodeGeneratorResponse
from google.protobuf.descriptor_pb2 import FileDescriptorSet

from protoc_gen_restmon.cli import include_paths
from protoc_gen_restmon.plugin.main import run

REPO = Path(__file__).resolve().parents[2]
PROTOS = REPO / "protos"
EXAMPLE_FILES = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))

_CAPTURE = """\
import os, sys
from google.protobuf.compiler.plugin_pb2 import CodeGeneratorResponse
with open(os.environ["RESTMON_CAPTURE"], "wb") as out:
    out.write(sys.stdin.buffer.read())
sys.stdout.buffer.write(CodeGeneratorResponse(supported_features=1).SerializeToString())
"""


# `python -m grpc_tools.protoc` adds grpc_tools' own include dir (the well-known types) last.
BUNDLED_PROTOC = (sys.executable, "-m", "grpc_tools.protoc")


def debian_protoc() -> str | None:
    """Debian's `protoc` (protobuf-compiler) if it is on PATH, else None."""
    return shutil.which("protoc")


def any_protoc() -> list[str]:
    """A protoc command: Debian's where it is installed, else grpc_tools' bundled one.

    For tests that need *a* protoc (`make test` promises only Python and make); a test about
    Debian's protoc itself uses `debian_protoc()` and skips without it.
    """
    found = debian_protoc()
    return [found] if found else list(BUNDLED_PROTOC)


def protoc(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m grpc_tools.protoc` with the googleapis and well-known include paths."""
    command = [
        *BUNDLED_PROTOC,
        *(f"-I{p}" for p in include_paths()),
        *args,
    ]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def capture_request(
    scratch: Path, includes: list[Path], files: list[str], parameter: str = ""
) -> bytes:
    """The exact request protoc sends a plugin for `files` (source info, json names and all)."""
    plugin = scratch / "protoc-gen-capture"
    plugin.write_text(f"#!{sys.executable}\n{_CAPTURE}")
    plugin.chmod(0o755)
    target = scratch / "request.bin"
    env = {**os.environ, "RESTMON_CAPTURE": str(target)}
    args = [
        *(f"-I{p}" for p in includes),
        f"--plugin=protoc-gen-capture={plugin}",
        f"--capture_out={scratch}",
        *([f"--capture_opt={parameter}"] if parameter else []),
        *files,
    ]
    result = protoc(args, env=env)
    if result.returncode:
        raise AssertionError(f"protoc failed: {result.stderr}")
    return target.read_bytes()


def write_protos(root: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return sorted(files)


def generate_inline(
    tmp_path: Path, files: dict[str, str], parameter: str = ""
) -> CodeGeneratorResponse:
    """Write `files` under tmp_path/src, capture protoc's request, run the plugin on it."""
    src = tmp_path / "src"
    names = write_protos(src, files)
    raw = capture_request(tmp_path, [src], names, parameter)
    return run(raw)


def write_response(response: CodeGeneratorResponse, out: Path) -> None:
    for file in response.file:
        (out / file.name).parent.mkdir(parents=True, exist_ok=True)
        (out / file.name).write_text(file.content)


# --- Helpers for the plugin tests (errors, options, http_config, route modules) ---


def restmon_plugin() -> Path:
    """The installed `protoc-gen-restmon` console script of the running interpreter."""
    return Path(sys.executable).parent / "protoc-gen-restmon"


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the one line of `text` that contains `needle`."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    if len(lines) != 1:
        raise AssertionError(f"{needle!r} is on lines {lines}, expected exactly one")
    return lines[0]


@contextlib.contextmanager
def imported_output(response: CodeGeneratorResponse, root: Path) -> Iterator[str]:
    """Write `response` under root/gen (a regular package), importable as `gen.<package>`.

    Yields the package name "gen"; afterwards `root` leaves sys.path and every `gen` module leaves
    sys.modules, so the next test can import its own `gen` from another directory.
    """
    out = root / "gen"
    out.mkdir(parents=True, exist_ok=True)
    write_response(response, out)
    (out / "__init__.py").touch()
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield "gen"
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "gen" or m.startswith("gen.")]:
            del sys.modules[name]


def descriptor_set(scratch: Path, includes: list[Path], files: list[str]) -> FileDescriptorSet:
    """`files` and all their imports as protoc's --descriptor_set_out writes them.

    With --retain_options: like a plugin's request, it keeps source-retention options.
    """
    target = scratch / "descriptors.binpb"
    result = protoc(
        [
            *(f"-I{p}" for p in includes),
            "--include_imports",
            "--retain_options",
            f"--descriptor_set_out={target}",
            *files,
        ]
    )
    if result.returncode:
        raise AssertionError(f"protoc failed: {result.stderr}")
    return FileDescriptorSet.FromString(target.read_bytes())


def with_parameter(raw_request: bytes, parameter: str) -> bytes:
    """A captured request as protoc would send it with `--<plugin>_opt=parameter` instead."""
    from google.protobuf.compiler.plugin_pb2 import CodeGeneratorRequest

    request = CodeGeneratorRequest.FromString(raw_request)
    request.parameter = parameter
    return request.SerializeToString()
