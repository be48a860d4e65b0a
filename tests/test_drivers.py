"""The plugin driven for real: grpc_tools, Debian protoc, buf, `python -m`, a built wheel."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from google.protobuf.descriptor_pb2 import FileDescriptorProto

from protoc_gen_restmon.cli import include_paths
from tests.support.protoc_tools import EXAMPLE_FILES, PROTOS, REPO, protoc

BIN = Path(sys.executable).parent
PLUGIN = BIN / "protoc-gen-restmon"
IN_CI = os.environ.get("CI") == "true"


def read_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py"))}


def require(tool: str) -> str:
    """The tool's path; CI installs every tool, so there a missing one fails instead of skipping."""
    path = shutil.which(tool) or (str(BIN / tool) if (BIN / tool).exists() else None)
    if path is None:
        if IN_CI:
            pytest.fail(f"{tool} is not installed; .ci/run must install it")
        pytest.skip(f"{tool} not installed")
    return path


def test_grpc_tools_protoc_writes_what_the_plugin_returns(
    tmp_path: Path, example_files: dict[str, str]
) -> None:
    result = protoc(
        [
            f"-I{PROTOS}",
            f"--plugin=protoc-gen-restmon={PLUGIN}",
            f"--restmon_out={tmp_path}",
            *EXAMPLE_FILES,
        ],
    )
    assert result.returncode == 0, result.stderr
    assert read_tree(tmp_path) == example_files


def test_debian_protoc_gives_the_same_output(tmp_path: Path, example_files: dict[str, str]) -> None:
    system_protoc = require("protoc")
    includes = [f"-I{PROTOS}", *(f"-I{p}" for p in include_paths())]
    command = [
        system_protoc,
        *includes,
        f"--plugin=protoc-gen-restmon={PLUGIN}",
        f"--restmon_out={tmp_path}",
        *EXAMPLE_FILES,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert read_tree(tmp_path) == example_files


def test_python_dash_m_acts_as_the_plugin(tmp_path: Path, example_files: dict[str, str]) -> None:
    wrapper = tmp_path / "protoc-gen-restmon"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m protoc_gen_restmon "$@"\n')
    wrapper.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    result = protoc(
        [
            f"-I{PROTOS}",
            f"--plugin=protoc-gen-restmon={wrapper}",
            f"--restmon_out={out}",
            *EXAMPLE_FILES,
        ]
    )
    assert result.returncode == 0, result.stderr
    assert read_tree(out) == example_files


def test_buf_generate_with_a_local_plugin(tmp_path: Path, example_files: dict[str, str]) -> None:
    buf = require("buf")
    workspace = tmp_path / "ws"
    (workspace / "googleapis" / "google").mkdir(parents=True)
    (workspace / "protos").symlink_to(PROTOS)
    google_api = Path(include_paths()[0]) / "google" / "api"
    (workspace / "googleapis" / "google" / "api").symlink_to(google_api)
    template = tmp_path / "buf.gen.yaml"
    template.write_text(
        "version: v2\n"
        "plugins:\n"
        f"  - local: {PLUGIN}\n"
        "    out: gen\n"
        "    strategy: all\n"
        "inputs:\n"
        "  - directory: .\n"
        "    paths: [protos/bookstore, protos/common]\n"
    )
    config = REPO / "protos" / "buf.workspace.yaml"
    command = [
        buf,
        "generate",
        "--config",
        str(config),
        "--template",
        str(template),
        "-o",
        str(tmp_path / "out"),
    ]
    env = {**os.environ, "BUF_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        command, cwd=workspace, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    # buf compiles with its own copy of descriptor.proto and keeps source info for imported files,
    # so only the embedded descriptors may differ, and only in those respects.
    generated = read_tree(tmp_path / "out" / "gen")
    assert generated.keys() == example_files.keys()
    for name, text in generated.items():
        if name.endswith("_restmon_monitor.py"):
            assert same_monitor_module(text, example_files[name]), name
        else:
            assert text == example_files[name], name


def same_monitor_module(ours: str, theirs: str) -> bool:
    def split(text: str) -> tuple[str, dict[str, FileDescriptorProto]]:
        code, _, _ = text.partition("FILE_DESCRIPTORS")
        namespace: dict[str, object] = {}
        exec(compile(text, "<monitor>", "exec"), namespace)
        files = {}
        for name, data in namespace["FILE_DESCRIPTORS"]:  # type: ignore[attr-defined]
            files[name] = FileDescriptorProto.FromString(base64.b64decode(data))
            files[name].ClearField("source_code_info")
        return code, files

    (code_a, files_a), (code_b, files_b) = split(ours), split(theirs)
    own = [n for n in files_a if not n.startswith("google/protobuf/")]
    return (
        code_a == code_b
        and list(files_a) == list(files_b)
        and all(files_a[n] == files_b[n] for n in own)
    )


@pytest.mark.slow
def test_built_wheel_carries_the_templates(tmp_path: Path, example_files: dict[str, str]) -> None:
    """Build the wheel, install it alone into a fresh venv (dependencies borrowed), generate."""
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(tmp_path.glob("protoc_gen_restmon-*.whl"))
    with zipfile.ZipFile(wheel) as archive:  # the package data a user's install needs
        names = set(archive.namelist())
    assert "protoc_gen_restmon/py.typed" in names  # PEP 561: users' type checkers read our hints
    assert "protoc_gen_restmon/runtime/admin/dashboard.html" in names
    # The gateway's docs page: its own files and the vendored Swagger UI, license included.
    apidocs = "protoc_gen_restmon/runtime/apidocs"
    assert {f"{apidocs}/docs.html", f"{apidocs}/docs.js"} <= names
    swagger = ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE", "README.md")
    assert {f"{apidocs}/swagger_ui/{name}" for name in swagger} <= names
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=True)
    fresh_python = fresh / "bin" / "python"
    installed = subprocess.run(
        [str(fresh_python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    # Dependencies come from this interpreter's site-packages via PYTHONPATH; that directory's
    # .pth files (our editable install among them) are not processed, so the wheel's copy runs.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    env = {**os.environ, "PYTHONPATH": site}
    where = subprocess.run(
        [str(fresh_python), "-c", "import protoc_gen_restmon as p; print(p.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(fresh))
    out = tmp_path / "out"
    out.mkdir()
    command = [
        str(fresh_python),
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        *(f"-I{p}" for p in include_paths()),
        f"--plugin=protoc-gen-restmon={fresh / 'bin' / 'protoc-gen-restmon'}",
        f"--restmon_out={out}",
        *EXAMPLE_FILES,
    ]
    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert read_tree(out) == example_files
