"""The `restmon` command: generate code with the plugin, list routes; `serve`, `keys` and
`admin` live in serve_cli and monitor_cli."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

from protoc_gen_restmon import monitor_cli, serve_cli
from protoc_gen_restmon.runtime.specs import ROUTES_MODULE


def include_paths() -> list[str]:
    """Where `google/api/*.proto` (googleapis-common-protos) and the well-known types live."""
    import grpc_tools
    from google.api import annotations_pb2

    googleapis = Path(annotations_pb2.__file__).resolve().parents[2]
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    return [str(googleapis), str(well_known)]


def plugin_executable(scratch: Path) -> str:
    """The installed `protoc-gen-restmon` script, or a wrapper around this interpreter."""
    beside = Path(sys.executable).with_name("protoc-gen-restmon")
    found = str(beside) if beside.exists() else shutil.which("protoc-gen-restmon")
    if found:
        return found
    wrapper = scratch / "protoc-gen-restmon"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m protoc_gen_restmon "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def cmd_generate(args: argparse.Namespace) -> int:
    from grpc_tools import protoc

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Generated packages import each other relatively: the output root must itself be a package.
    (out / "__init__.py").touch(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        argv = [
            "grpc_tools.protoc",
            *(f"-I{path}" for path in [*args.include, *include_paths()]),
            f"--plugin=protoc-gen-restmon={plugin_executable(Path(scratch))}",
            f"--restmon_out={out}",
            *([f"--restmon_opt={','.join(args.opt)}"] if args.opt else []),
            *args.files,
        ]
        return int(protoc.main(argv))


def route_modules(name: str) -> Iterator[ModuleType]:
    """The route module `name`, or every route module in package `name` and below it."""
    module = importlib.import_module(name)
    if hasattr(module, "BINDINGS"):
        yield module
        return
    for directory in getattr(module, "__path__", []):
        for found in sorted(Path(directory).rglob(f"{ROUTES_MODULE}.py")):
            relative = found.relative_to(directory).with_suffix("").parts
            yield importlib.import_module(".".join((name, *relative)))


def cmd_routes(args: argparse.Namespace) -> int:
    sys.path.insert(0, os.getcwd())
    for name in args.modules:
        try:
            modules = list(route_modules(name))
        except ImportError as err:
            print(f"restmon routes: cannot import {name}: {err}", file=sys.stderr)
            return 2
        for module in modules:
            for binding in module.BINDINGS:
                print(binding)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="restmon", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="run protoc with protoc-gen-restmon")
    gen.add_argument("-I", "--proto_path", dest="include", action="append", default=[])
    gen.add_argument("-o", "--out", required=True, help="output root (made a Python package)")
    gen.add_argument("--opt", action="append", default=[], help="a plugin option, k=v")
    gen.add_argument("files", nargs="+")
    gen.set_defaults(run=cmd_generate)
    routes = commands.add_parser("routes", help="list every HTTP binding of generated modules")
    routes.add_argument("modules", nargs="+", help="generated package or route module, dotted")
    routes.set_defaults(run=cmd_routes)
    serve_cli.register(commands)
    monitor_cli.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    sys.exit(args.run(args))
