"""betterproto's dataclass modules for a request, byte for byte what its own plugin writes, faster.

`generate_dataclasses` returns exactly the files that `protoc-gen-python_betterproto` (betterproto
2.0.0b7, pinned) writes for the same request and options. It drives betterproto's own compiler
(`traverse`, `read_protobuf_type`, the models, the Jinja templates, isort and black with the same
settings); it re-implements none of the templates. What it changes is how the work is arranged:

* One job per output package. A job's sub-request holds the package's own files plus the files
  that define its methods' input messages (the only thing betterproto looks up across packages),
  so jobs are independent and run in parallel worker processes. Files are handed over without
  `source_code_info` (betterproto reads only leading comments from it; see `_CommentIndex`),
  which makes parsing them with betterproto's pure-Python runtime several times cheaper.
* Comments: betterproto's `get_comment` scans every location of the file for each element. Each
  message or enum here gets a `source_file` that holds only the locations it can ask for (its own
  path and its fields' or values' paths), in their original order, so the scan returns the same
  comment from a handful of candidates.
* Input messages: betterproto's `ServiceMethodCompiler.py_input_message` scans every message of
  the request on each access. `_ServiceMethodCompiler` stores the same answer, looked up once in
  a table (see its docstring).
* black: large modules are split at top-level class boundaries and formatted in parallel chunks;
  `split_top_level` explains why the joined result equals black's output on the whole module.

Deliberate differences: betterproto adds an empty `__init__.py` to each parent directory of an
output package unless that file exists *in the plugin's current directory*. A plugin must not
read the filesystem, so these parent `__init__.py` files are always emitted (empty). Where
betterproto's module would not import (a class shadowing a typing name, a comment that is no
valid string literal), `dataclass_repairs` writes one that does; nowhere else. betterproto's
"Writing …" lines on stderr and its name-collision warnings are not reproduced.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any

import black
import isort.api
import jinja2
from betterproto.compile.importing import parse_source_type_name
from betterproto.compile.naming import pythonize_class_name
from betterproto.lib.google.protobuf import FileDescriptorProto as BetterprotoFile
from betterproto.lib.google.protobuf import SourceCodeInfo, SourceCodeInfoLocation
from betterproto.lib.google.protobuf.compiler import CodeGeneratorRequest as BetterprotoRequest
from betterproto.plugin.models import (
    MessageCompiler,
    OutputTemplate,
    PluginRequestCompiler,
    ServiceCompiler,
    ServiceMethodCompiler,
    monkey_patch_oneof_index,
)
from betterproto.plugin.parser import read_protobuf_type, traverse
from betterproto.plugin.typing_compiler import (
    DirectImportTypingCompiler,
    NoTyping310TypingCompiler,
    TypingCompiler,
    TypingImportTypingCompiler,
)
from google.protobuf.compiler.plugin_pb2 import CodeGeneratorRequest
from google.protobuf.descriptor_pb2 import DescriptorProto, FileDescriptorProto

from protoc_gen_restmon.plugin.dataclass_repairs import (
    ShadowSafeTypingCompiler,
    docstring_safe_comment,
    shadowed_typing_names,
)
from protoc_gen_restmon.runtime.protofiles.paths import (
    ENUM_VALUE,
    FILE_SERVICE,
    MESSAGE_FIELD,
    SERVICE_METHOD,
)

__all__ = ["DataclassGenerationError", "generate_dataclasses", "split_top_level"]


# Modules are cut into pieces of at least this many characters for black. Smaller pieces balance
# better across workers; below ~20k, black's time per character stops falling.
CHUNK_CHARS = 20_000
# Below this much source, worker processes cost more than they save.
PARALLEL_MIN_BYTES = 200_000

ElementPath = tuple[int, ...]  # a SourceCodeInfo.Location path


class DataclassGenerationError(Exception):
    """betterproto could not compile (or black could not format) the module of one package.

    `package` is the proto package ("" for files without one) or None when the options are wrong.
    """

    def __init__(self, package: str | None, message: str) -> None:
        super().__init__(package, message)  # both in args, so the error survives pickling
        self.package = package
        self.message = message

    def __str__(self) -> str:
        if self.package is None:
            return f"betterproto options: {self.message}"
        return f"betterproto, package {self.package or '(no package)'!r}: {self.message}"


@dataclass(frozen=True)
class _Options:
    """betterproto's plugin options, read the way `generate_code` reads them."""

    pydantic_dataclasses: bool
    typing: str  # "direct", "root", "310"; betterproto treats anything else as "direct"
    include_google: bool

    def typing_compiler(self, shadowed: frozenset[str] = frozenset()) -> TypingCompiler:
        """betterproto's compiler for the option; `shadowed`: the typing names that classes of
        the module shadow (dataclass_repairs)."""
        if self.typing == "root":
            return TypingImportTypingCompiler()
        if self.typing == "310":
            return NoTyping310TypingCompiler()
        if shadowed:
            return ShadowSafeTypingCompiler(shadowed=shadowed)
        return DirectImportTypingCompiler()


def _parse_options(parameter: str) -> _Options:
    """`pydantic_dataclasses,typing.310` -> _Options, as betterproto 2.0.0b7's generate_code."""
    flags = parameter.split(",") if parameter else []
    typing_opts = [flag[len("typing.") :] for flag in flags if flag.startswith("typing.")]
    if len(typing_opts) > 1:
        raise DataclassGenerationError(None, f"multiple typing options provided: {parameter!r}")
    return _Options(
        pydantic_dataclasses="pydantic_dataclasses" in flags,
        typing=typing_opts[0] if typing_opts else "direct",
        include_google="INCLUDE_GOOGLE" in flags,
    )


@dataclass(frozen=True)
class _PackageJob:
    """Everything a worker needs to write one package's module; picklable."""

    package: str
    options: _Options
    # The sub-request, in request order: serialized FileDescriptorProtos without source_code_info.
    files: tuple[bytes, ...]
    # Leading comments of the package's own files: file name -> ((path, comment), ...).
    comments: dict[str, tuple[tuple[ElementPath, str], ...]] = field(default_factory=dict)
    black: bool = True  # False: the module as rendered (option format=none)

    @property
    def weight(self) -> int:
        return sum(len(f) for f in self.files)


def generate_dataclasses(
    request_bytes: bytes, parameter: str, *, workers: int | None = None, black: bool = True
) -> list[tuple[str, str]]:
    """(file name, content) pairs: what protoc-gen-python_betterproto writes for this request.

    `parameter` is betterproto's option string (`pydantic_dataclasses`, `typing.direct|root|310`,
    `INCLUDE_GOOGLE`, comma-separated); the request's own `parameter` field is ignored. Package
    modules come first, in request order, then the parent `__init__.py` files, sorted; every
    parent directory gets one (see the module docstring). `workers` caps the worker processes
    (default: the usable CPUs; 1 runs everything in this process). `black=False` leaves the
    modules as betterproto renders them, isort applied (the `format=none` option). Raises
    DataclassGenerationError naming the package when betterproto or black fails.
    """
    options = _parse_options(parameter)
    request = CodeGeneratorRequest.FromString(request_bytes)
    jobs = _build_jobs(request, options, black)
    modules = _run_jobs(jobs, _worker_count(jobs, workers))
    out = [(_module_path(job.package), modules[job.package]) for job in jobs]
    return out + [(name, "") for name in _parent_init_files([name for name, _ in out])]


def _build_jobs(
    request: CodeGeneratorRequest, options: _Options, black: bool = True
) -> list[_PackageJob]:
    """One job per package betterproto writes (all packages of the request but google.protobuf)."""
    by_package: dict[str, list[int]] = defaultdict(list)
    for i, file in enumerate(request.proto_file):
        by_package[file.package].append(i)
    defined_in = _message_files(request.proto_file)
    stripped: dict[int, bytes] = {}

    def stripped_file(i: int) -> bytes:
        if i not in stripped:
            copy = FileDescriptorProto()
            copy.CopyFrom(request.proto_file[i])
            copy.ClearField("source_code_info")
            stripped[i] = copy.SerializeToString()
        return stripped[i]

    jobs = []
    for package, own in by_package.items():
        if package == "google.protobuf" and not options.include_google:
            continue
        wanted = set(own)
        for i in own:
            for key in _input_message_keys(request.proto_file[i]):
                wanted.update(defined_in.get(key, ()))
        own_files = [request.proto_file[i] for i in own]
        jobs.append(
            _PackageJob(
                package=package,
                options=options,
                files=tuple(stripped_file(i) for i in sorted(wanted)),
                comments={f.name: _leading_comments(f) for f in own_files},
                black=black,
            )
        )
    return jobs


def _message_files(files: Sequence[FileDescriptorProto]) -> dict[tuple[str, str], set[int]]:
    """(package, py_name) of every message betterproto models -> indexes of its files."""
    defined_in: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, file in enumerate(files):
        for name in _flat_message_names(file.message_type, ""):
            defined_in[(file.package, pythonize_class_name(name))].add(i)
    return defined_in


def _flat_message_names(messages: Iterable[DescriptorProto], prefix: str) -> Iterator[str]:
    """The names betterproto's `traverse` gives messages ("_Outer_Inner"), map entries left out."""
    for message in messages:
        name = f"{prefix}_{message.name}"
        if not message.options.map_entry:
            yield name
        yield from _flat_message_names(message.nested_type, name)


def _input_message_keys(file: FileDescriptorProto) -> Iterator[tuple[str, str]]:
    for service in file.service:
        for method in service.method:
            yield _input_message_key(method.input_type)


def _input_message_key(input_type: str) -> tuple[str, str]:
    """The (package, py_name) that `ServiceMethodCompiler.py_input_message` compares with."""
    package, name = parse_source_type_name(input_type)
    return package, pythonize_class_name(name.replace(".", ""))


def _leading_comments(file: FileDescriptorProto) -> tuple[tuple[ElementPath, str], ...]:
    """The only part of source_code_info betterproto reads: non-empty leading comments."""
    return tuple(
        (tuple(loc.path), docstring_safe_comment(loc.leading_comments))
        for loc in file.source_code_info.location
        if loc.leading_comments
    )


def _module_path(package: str) -> str:
    return str(PurePosixPath(*package.split("."), "__init__.py")) if package else "__init__.py"


def _parent_init_files(module_paths: Sequence[str]) -> list[str]:
    """Every parent directory's `__init__.py` that is not itself a module ("google/__init__.py")."""
    modules = set(module_paths)
    parents = {
        str(directory / "__init__.py")
        for path in module_paths
        for directory in PurePosixPath(path).parents
    }
    return sorted(parents - modules)


# --- running the jobs -------------------------------------------------------------------------


def _worker_count(jobs: Sequence[_PackageJob], workers: int | None) -> int:
    if workers is not None:
        return max(1, workers)
    if sum(job.weight for job in jobs) < PARALLEL_MIN_BYTES:
        return 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(usable or 1, 8))


def _run_jobs(jobs: Sequence[_PackageJob], workers: int) -> dict[str, str]:
    """package -> formatted module. Same bytes whatever the worker count or scheduling."""
    if workers == 1:
        return {job.package: _generate_inline(job) for job in jobs}
    # fork: workers inherit the imported compiler (black, isort, jinja2, betterproto) for free.
    method = "fork" if sys.platform == "linux" else None
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        rendered = {
            pool.submit(_render_module, job): job
            for job in sorted(jobs, key=lambda job: -job.weight)  # the longest first
        }
        formatted: dict[str, list[Future[str]]] = {}
        failures: dict[str, BaseException] = {}
        unformatted: dict[str, str] = {}
        for done in as_completed(rendered):
            package = rendered[done].package
            try:
                code = done.result()
            except DataclassGenerationError as exc:
                failures[package] = exc
                continue
            if not rendered[done].black:
                unformatted[package] = code
                continue
            chunks = split_top_level(code)
            formatted[package] = [pool.submit(_format_chunk, package, c) for c in chunks]
        modules = {}
        try:
            for job in jobs:  # in request order, so the error raised does not depend on timing
                if job.package in failures:
                    raise failures[job.package]
                if job.package in unformatted:
                    modules[job.package] = unformatted[job.package]
                    continue
                modules[job.package] = _join_chunks([f.result() for f in formatted[job.package]])
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        return modules


def _generate_inline(job: _PackageJob) -> str:
    code = _render_module(job)
    if not job.black:
        return code
    chunks = split_top_level(code)
    return _join_chunks([_format_chunk(job.package, chunk) for chunk in chunks])


# --- one package: betterproto's compiler, fed a sub-request -----------------------------------


def _render_module(job: _PackageJob) -> str:
    """The package's module as betterproto renders it, isort applied, not yet black-formatted."""
    # betterproto reads descriptors with its own proto3 classes; its own plugin calls this patch
    # of those classes before parsing so that FieldDescriptorProto.oneof_index can tell "unset"
    # from 0. It is betterproto's patch of its own classes, and each worker process needs it
    # (with the "spawn" start method they do not inherit it from the parent).
    monkey_patch_oneof_index()  # type: ignore[no-untyped-call]
    try:
        return _render(_build_output(job))
    except DataclassGenerationError:
        raise
    except Exception as exc:  # betterproto raises ValueError, NotImplementedError, StopIteration…
        raise DataclassGenerationError(job.package, f"{type(exc).__name__}: {exc}") from exc


def _build_output(job: _PackageJob) -> Any:
    """Mirror of betterproto 2.0.0b7 `generate_code`, up to rendering: the package's OutputTemplate.

    Packages of the sub-request other than `job.package` are read only so that input messages
    can be found in them; their services are not read (they affect only their own module).
    betterproto's models are handled as Any: some of their annotations are wrong (`input_files`
    says List[str] and holds FileDescriptorProtos).
    """
    files = [BetterprotoFile().parse(data) for data in job.files]
    request = PluginRequestCompiler(
        plugin_request_obj=BetterprotoRequest(parameter="", proto_file=files)
    )
    outputs: dict[str, Any] = request.output_packages
    for file in files:
        if file.package not in outputs:
            outputs[file.package] = OutputTemplate(
                parent_request=request,
                package_proto_obj=file,
                pydantic_dataclasses=job.options.pydantic_dataclasses,
                typing_compiler=job.options.typing_compiler(_shadowed(files, file.package)),
            )
        outputs[file.package].input_files.append(file)
    for output in outputs.values():
        for file in output.input_files:
            comments = _CommentIndex(file.name, job.comments.get(file.name, ()))
            item: Any
            for item, path in traverse(file):
                read_protobuf_type(
                    item=item,
                    path=path,
                    source_file=comments.source_file_for(tuple(path)),
                    output_package=output,
                )
    input_messages: dict[tuple[str, str], MessageCompiler] = {}
    for message in request.all_messages:  # first match wins, as in py_input_message's scan
        input_messages.setdefault((message.output_file.package, message.py_name), message)
    output = outputs[job.package]
    for file in output.input_files:
        for i, service in enumerate(file.service):
            _read_service(output, service, [FILE_SERVICE, i], input_messages)
    return output


def _shadowed(files: Sequence[Any], package: str) -> frozenset[str]:
    """The typing names that module-level classes of `package`'s module shadow: its top-level
    messages and enums (betterproto names nested ones Outer + Inner)."""
    return shadowed_typing_names(
        pythonize_class_name(item.name)
        for file in files
        if file.package == package
        for item in (*file.message_type, *file.enum_type)
    )


def _read_service(
    output: Any,
    service: Any,
    path: list[int],
    input_messages: dict[tuple[str, str], MessageCompiler],
) -> None:
    """betterproto's `read_protobuf_service`, with the input message looked up in a table."""
    service_data = ServiceCompiler(parent=output, proto_obj=service, path=path)
    for j, method in enumerate(service.method):
        _ServiceMethodCompiler(
            parent=service_data,
            proto_obj=method,
            path=[*path, SERVICE_METHOD, j],
            py_input_message=input_messages.get(_input_message_key(method.input_type)),
        )


@dataclass
class _ServiceMethodCompiler(ServiceMethodCompiler):
    """ServiceMethodCompiler with `py_input_message` stored instead of searched for.

    betterproto's `py_input_message` property rebuilds the list of every message in the request
    and pythonizes each name, on every access (twice per method in the template): quadratic, ~9 s
    of its ~35 s on aiplatform v1. This subclass only turns the property into a field that
    `_read_service` fills from a table built with the same rule (the first message, in request
    order, whose package and py_name equal the input type's), so it returns the same object.
    Nothing of betterproto is patched: only instances of this subclass behave differently.
    """

    py_input_message: MessageCompiler | None = None


class _CommentIndex:
    """Per-element `source_file`s that hold only the comments betterproto may ask that element for.

    betterproto reads comments through `get_comment(source_file, path)`, which returns the first
    location whose path equals `path` and that has a leading comment, scanning the whole file for
    every element. A message or enum at path P asks for P itself and for its fields' or values'
    paths P + [2, i], and passes its `source_file` on to its fields; nothing else reads
    `source_file`. So handing it a file with just those locations, in their original order, gives
    the same answers.
    """

    def __init__(self, file_name: str, comments: Iterable[tuple[ElementPath, str]]) -> None:
        self._file_name = file_name
        self._by_owner: dict[ElementPath, list[tuple[ElementPath, str]]] = defaultdict(list)
        for path, comment in comments:
            self._by_owner[path].append((path, comment))
            if len(path) >= 2 and path[-2] in (MESSAGE_FIELD, ENUM_VALUE):
                self._by_owner[path[:-2]].append((path, comment))
        self._empty = BetterprotoFile(name=file_name)

    def source_file_for(self, owner: ElementPath) -> Any:
        locations = self._by_owner.get(owner)
        if not locations:
            return self._empty
        return BetterprotoFile(
            name=self._file_name,
            source_code_info=SourceCodeInfo(
                location=[
                    SourceCodeInfoLocation(path=list(path), leading_comments=comment)
                    for path, comment in locations
                ]
            ),
        )


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """betterproto's Jinja environment (compiler.py), loading its own templates."""
    return jinja2.Environment(
        trim_blocks=True,
        lstrip_blocks=True,
        loader=jinja2.PackageLoader("betterproto", "templates"),
    )


def _render(output: Any) -> str:
    """betterproto's `outputfile_compiler` up to black: body first (it collects the imports)."""
    env = _environment()
    body = env.get_template("template.py.j2").render(output_file=output)
    code = env.get_template("header.py.j2").render(output_file=output) + body
    sorted_code: str = isort.api.sort_code_string(
        code=code,
        show_diff=False,
        py_version=37,
        profile="black",
        combine_as_imports=True,
        lines_after_imports=2,
        quiet=True,
        force_grid_wrap=2,
        known_third_party=["grpclib", "betterproto"],
    )
    return sorted_code


# --- black, in chunks -------------------------------------------------------------------------

_SPLIT_CANDIDATE = re.compile(r"\n\n(?=(?:class |@)[^\n]*\n)")


def split_top_level(code: str, chunk_chars: int = CHUNK_CHARS) -> list[str]:
    """Cut a rendered betterproto module into pieces that black can format separately.

    A cut goes before a line that starts a top-level class (its `class` line or its first
    decorator) when the line before it is blank and the last non-blank line is indented, i.e. a
    class or `if` body ends there. Why black gives the same text for the pieces, joined with two
    blank lines, as for the whole module:

    * black's line generator works statement by statement; splitting between top-level
      statements gives it the same statements.
    * Blank lines: black puts exactly two blank lines before a top-level class or decorator
      unless the previous line is a decorator, a comment, or a one-line stub `def` (none of
      which can precede such a cut); at the start of a piece it puts none, and it ends every
      piece with a single newline. Joining with "\\n\\n" restores the two blank lines.
    * Target versions: black infers them from syntax features of the source; betterproto's
      templates use none of them (no f-strings, walrus, match, `*args,` trailing commas…), so
      every piece and the whole module infer the same set. The corpus test checks this.
    * A docstring line never starts at column 0: betterproto indents every comment line, so a
      cut can only fall between statements, never inside a string.
    * Pieces start with `class`/`@`, never with a string, so black sees no module docstring.
    """
    if len(code) <= chunk_chars:
        return [code]
    cuts = [m.end() for m in _SPLIT_CANDIDATE.finditer(code) if _ends_a_block(code, m.start())]
    pieces: list[str] = []
    start = 0
    for cut in cuts:
        if cut - start >= chunk_chars:
            pieces.append(code[start:cut])
            start = cut
    pieces.append(code[start:])
    return pieces


def _ends_a_block(code: str, blank_at: int) -> bool:
    """True if the last non-blank line before `blank_at` (a newline) is indented."""
    end = blank_at
    while end > 0:
        start = code.rfind("\n", 0, end) + 1
        line = code[start:end]
        if line.strip():
            return line[0] in " \t"
        end = start - 1
    return False


def _format_chunk(package: str, chunk: str) -> str:
    try:
        with _gc_paused():
            formatted: str = black.format_str(chunk, mode=black.Mode())
    except Exception as exc:  # black.InvalidInput and friends: betterproto produced invalid code
        raise DataclassGenerationError(package, f"black failed: {exc}") from exc
    return formatted


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (black runs ~35% faster without it).

    black builds a syntax tree full of parent/child reference cycles; the collector keeps
    re-scanning it while it grows. Collection only decides *when* unreachable cycles are freed, so
    output cannot change; the chunk's garbage is collected once the collector is back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _join_chunks(chunks: Sequence[str]) -> str:
    return "\n\n".join(chunks)
