"""What several benchmarks need: the example protos generated and imported, and a free port."""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def generate_example(root: Path) -> ModuleType:
    """`restmon generate` of protos/ into root/gen; gen.bookstore.v1 imported (root and the
    repository on sys.path, for `examples`)."""
    protos = sorted(str(p) for p in (REPO / "protos").rglob("*.proto"))
    restmon = Path(sys.executable).with_name("restmon")
    command = [str(restmon), "generate", "-I", str(REPO / "protos"), "-o", str(root / "gen")]
    subprocess.run([*command, *protos], check=True)
    sys.path[:0] = [str(root), str(REPO)]
    return importlib.import_module("gen.bookstore.v1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
