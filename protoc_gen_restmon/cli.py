"""The `restmon` command: generate code with the plugin, list routes, write the OpenAPI
document a gateway serves; `serve`, `keys` and `admin` live in serve_cli and monitor_cli."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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


def with_openapi(opts: Sequence[str]) -> list[str]:
    """The plugin options with `openapi` added to the outputs (`--openapi`): to the last
    `outputs=` given, else to the default outputs.

    >>> with_openapi(["outputs=routes,typing.310"])
    ['outputs=routes+openapi', 'typing.310']
    >>> with_openapi([])
    ['outputs=dataclasses+routes+monitor+openapi']
    """
    from protoc_gen_restmon.plugin.options import DEFAULT_OUTPUTS

    items = [item.strip() for opt in opts for item in opt.split(",") if item.strip()]
    given = [i for i, item in enumerate(items) if item.startswith("outputs=")]
    if not given:
        return [*items, "outputs=" + "+".join((*DEFAULT_OUTPUTS, "openapi"))]
    items[given[-1]] += "+openapi"
    return items


def cmd_generate(args: argparse.Namespace) -> int:
    from grpc_tools import protoc

    if args.openapi:
        args.opt = with_openapi(args.opt)
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


@dataclass(frozen=True)
class ImportFailure:
    """A module `restmon routes` could not import, and why."""

    module: str
    error: Exception

    def __str__(self) -> str:
        error = self.error
        why = str(error)
        if isinstance(error, SyntaxError) and error.filename:  # its str() has the base name
            why = f"{error.msg} ({error.filename}, line {error.lineno})"
        return f"cannot import {self.module}: {type(error).__name__}: {why}"


def route_module_names(name: str) -> list[str]:
    """The route module `name`, or every route module in package `name` and below it, by file
    name: the packages below are not imported, so that one that fails cannot hide the others."""
    module = importlib.import_module(name)
    if hasattr(module, "BINDINGS"):
        return [name]
    found = []
    for directory in getattr(module, "__path__", []):
        for path in sorted(Path(directory).rglob(f"{ROUTES_MODULE}.py")):
            relative = path.relative_to(directory).with_suffix("").parts
            found.append(".".join((name, *relative)))
    return found


def route_modules(name: str) -> Iterator[ModuleType | ImportFailure]:
    """Each route module of `name` (see route_module_names), or why it could not be imported:
    importing one imports its package, i.e. the dataclasses, which may fail (SyntaxError,
    TypeError, a missing dependency, …)."""
    for module_name in route_module_names(name):
        try:
            yield importlib.import_module(module_name)
        except Exception as err:  # anything a generated package's import can raise
            yield ImportFailure(module_name, err)


def cmd_routes(args: argparse.Namespace) -> int:
    """Print every binding; name each module that could not be imported (exit 1, after all)."""
    sys.path.insert(0, os.getcwd())
    failures: list[ImportFailure] = []
    for name in args.modules:
        try:
            modules = list(route_modules(name))
        except Exception as err:  # the package named on the command line itself
            print(f"restmon routes: {ImportFailure(name, err)}", file=sys.stderr)
            return 2
        for module in modules:
            if isinstance(module, ImportFailure):
                failures.append(module)
                continue
            for binding in module.BINDINGS:
                print(binding)
    for failure in failures:
        print(f"restmon routes: {failure}", file=sys.stderr)
    if failures:
        print(
            f"restmon routes: {len(failures)} route module(s) not listed (see above)",
            file=sys.stderr,
        )
        return 1
    return 0


# Never connected: a proxy-mode Gateway opens its channel on its first call only.
UNUSED_UPSTREAM = "127.0.0.1:9"


def cmd_openapi(args: argparse.Namespace) -> int:
    """Write the OpenAPI document a gateway serving these packages serves at /openapi.json
    (`restmon serve --package …` in front of any server): the same Gateway builds it."""
    from protoc_gen_restmon.runtime.errors import ConfigError
    from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions
    from protoc_gen_restmon.runtime.openapi.serialize import dump_json, dump_yaml

    sys.path.insert(0, os.getcwd())
    try:
        packages = [found for name in args.modules for found in serve_cli.generated_packages(name)]
        gateway = Gateway(
            upstream=UNUSED_UPSTREAM,
            packages=packages,
            options=GatewayOptions(error_format=args.error_format),
        )
    except (serve_cli.UsageError, ConfigError) as err:
        print(f"restmon openapi: {err}", file=sys.stderr)
        return 2
    document = gateway.api.document()
    text = dump_yaml(document) if args.yaml else dump_json(document)
    if args.output is None:
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="restmon", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="run protoc with protoc-gen-restmon")
    gen.add_argument("-I", "--proto_path", dest="include", action="append", default=[])
    gen.add_argument("-o", "--out", required=True, help="output root (made a Python package)")
    gen.add_argument("--opt", action="append", default=[], help="a plugin option, k=v")
    gen.add_argument(
        "--openapi",
        action="store_true",
        help="also write an OpenAPI 3.1 document per package (<package>/openapi.json); "
        "--opt openapi_merge writes one openapi.json for the run instead",
    )
    gen.add_argument("files", nargs="+")
    gen.set_defaults(run=cmd_generate)
    routes = commands.add_parser(
        "routes",
        help="list every HTTP binding of generated modules",
        description="List every HTTP binding. A route module that cannot be imported (its "
        "package's dataclasses fail to import) is named on stderr with the exception, every "
        "other one is still listed, and the exit status is 1.",
    )
    routes.add_argument("modules", nargs="+", help="generated package or route module, dotted")
    routes.set_defaults(run=cmd_routes)
    openapi = commands.add_parser(
        "openapi",
        help="write the OpenAPI 3.1 document of generated packages",
        description="Write the OpenAPI 3.1 document that a gateway serving these packages "
        "serves at /openapi.json (built the same way, from the descriptors embedded in their "
        "monitor modules), as JSON or YAML.",
    )
    openapi.add_argument(
        "modules", nargs="+", help="a generated package (gen.bookstore.v1) or one holding them"
    )
    openapi.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    openapi.add_argument("--yaml", action="store_true", help="YAML rather than JSON")
    openapi.add_argument(
        "--error-format",
        default="status",
        choices=serve_cli.ERROR_FORMATS,
        help="the error bodies documented: as `restmon serve --error-format`",
    )
    openapi.set_defaults(run=cmd_openapi)
    serve_cli.register(commands)
    monitor_cli.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(given)
    args.argv = given  # `restmon serve --workers N` gives its workers the same command line
    sys.exit(args.run(args))
