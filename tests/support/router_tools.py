"""Test helpers for the router: bindings from template strings, and a brute-force oracle.

The oracle restates docs/http-transcoding.md §2 without a trie: every alignment of every binding
with the path, ranked by the choice it makes at each template position (literal, then `*`,
then `**` taking 0, 1, … segments; a route ending at the end of the path before a `**` taking
nothing). The router must pick the binding whose best alignment ranks lowest.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

from protoc_gen_restmon.httprule import (
    Literal,
    Wildcard,
    compile_template,
    parse_template,
)
from protoc_gen_restmon.runtime.specs import (
    Binding,
    Cardinality,
    FieldPath,
    MessageRef,
    PathVariable,
    Segment,
    SegmentKind,
)
from tests.support.protoc_tools import REPO, protoc

CORPUS = REPO / "corpus" / "google-proto-files"
REF = MessageRef("test.v1.Message", ".", "Message")
Rank = tuple[tuple[int, ...], ...]
RESERVED = "!#$&'()*+,/:;=?@[]"  # RFC 6570 §2.2
SLASH = "/"

_KINDS = {Literal: SegmentKind.LITERAL, Wildcard: SegmentKind.WILDCARD}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]")


def make_binding(spec: str, method: str = "M") -> Binding:
    """`"GET /v1/{name=shelves/*}"` -> a Binding, as the plugin would compile it.

    A trailing ` fully_decode` sets `fully_decode_reserved_expansion`.
    """
    http_method, template, *flags = spec.split(" ")
    compiled = compile_template(parse_template(template))
    segments = tuple(
        Segment(SegmentKind.LITERAL, s.value)
        if isinstance(s, Literal)
        else Segment(_KINDS.get(type(s), SegmentKind.DEEP_WILDCARD))
        for s in compiled.segments
    )
    variables = tuple(
        PathVariable(FieldPath(v.field_path, v.field_path), v.start, v.end, v.reserved_expansion)
        for v in compiled.variables
    )
    return Binding(
        service="test.v1.Service",
        method=method,
        http_method=http_method,
        template=template,
        segments=segments,
        variables=variables,
        verb=compiled.verb,
        body=None,
        response_body=None,
        request=REF,
        response=REF,
        cardinality=Cardinality.UNARY_UNARY,
        fully_decode_reserved_expansion="fully_decode" in flags,
    )


def normalize(text: str) -> str:
    """RFC 3986 §6.2.2: decode escapes of unreserved characters, upper-case the others."""

    def one(m: re.Match[str]) -> str:
        char = chr(int(m[1], 16))
        return char if _UNRESERVED.fullmatch(char) else m[0].upper()

    return _ESCAPE.sub(one, text)


def decode_expected(raw: str, keep: str) -> str:
    """Percent-decode `raw` but leave the escapes of the characters in `keep` as written."""
    kept = _ESCAPE.sub(lambda m: "%25" + m[1] if chr(int(m[1], 16)) in keep else m[0], raw)
    return urllib.parse.unquote(kept, errors="strict")


def _alignments(segments: Sequence[Segment], keys: Sequence[str]) -> Iterator[Rank]:
    if not segments:
        if not keys:
            yield ((-1,),)
        return
    head, rest = segments[0], segments[1:]
    if head.kind is SegmentKind.LITERAL:
        if keys and keys[0] == normalize(head.value):
            yield from (((0,), *r) for r in _alignments(rest, keys[1:]))
    elif head.kind is SegmentKind.WILDCARD:
        if keys and keys[0]:
            yield from (((1,), *r) for r in _alignments(rest, keys[1:]))
    else:
        for taken in range(len(keys) + 1):
            yield from (((2, taken), *r) for r in _alignments(rest, keys[taken:]))


def rank(binding: Binding, keys: Sequence[str], verb: str) -> Rank | None:
    """The best alignment of `binding` with the normalized path segments, or None."""
    if normalize(binding.verb) != verb:
        return None
    return min(_alignments(binding.segments, keys), default=None)


def interpretations(path: str, verbs: set[str]) -> list[tuple[list[str], str]]:
    """(normalized segments, verb) readings of a path, the verb reading first when it applies."""
    keys = [normalize(p) for p in path.split("/")[1:]] if path != "/" else []
    readings = []
    if keys and ":" in keys[-1]:
        head, _, verb = keys[-1].rpartition(":")
        if head and verb in verbs:
            readings.append(([*keys[:-1], head], verb))
    readings.append((keys, ""))
    return readings


def oracle(bindings: Sequence[Binding], http_method: str, path: str) -> Binding | set[str]:
    """The binding the router must pick, or else the methods some binding takes for the path."""
    verbs = {normalize(b.verb) for b in bindings if b.verb}
    readings = interpretations(path, verbs)
    for method in (http_method, "GET") if http_method == "HEAD" else (http_method,):
        for keys, verb in readings:
            ranked = []
            for binding in bindings:
                if binding.http_method in (method, "*"):
                    best = rank(binding, keys, verb)
                    if best is not None:
                        ranked.append((best, binding.http_method != method, binding))
            if ranked:
                return min(ranked, key=lambda item: item[:2])[2]
    allowed = {b.http_method for b in bindings for keys, verb in readings if rank(b, keys, verb)}
    return allowed | {"HEAD"} if "GET" in allowed else allowed


def corpus_http_files() -> list[str]:
    """Every .proto file (relative to the corpus) of each googleapis directory with an http
    rule; google/protobuf left out: protoc cannot compile its editions files."""
    listed = subprocess.run(
        ["grep", "-rl", "--include=*.proto", "google.api.http", str(CORPUS)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    directories = sorted({Path(p).parent for p in listed} - {CORPUS / "google" / "protobuf"})
    return sorted(str(p.relative_to(CORPUS)) for d in directories for p in d.glob("*.proto"))


def generate_corpus_routes(out: Path, outputs: str = "routes") -> None:
    """Route modules (or other `outputs`, e.g. `openapi`) of every googleapis package with an
    http rule, in one protoc run (~35 s for routes).

    One run rather than one per directory (as test_corpus.py does, ~200 s on 2 cores): the
    bindings are the same. google/protobuf is left out: protoc cannot compile its editions.
    """
    files = corpus_http_files()
    plugin = Path(sys.executable).with_name("protoc-gen-restmon")
    result = protoc(
        [
            f"-I{CORPUS}",
            f"--plugin=protoc-gen-restmon={plugin}",
            f"--restmon_out={out}",
            f"--restmon_opt=outputs={outputs},duplicate_routes=warn",
            *files,
        ]
    )
    if result.returncode:
        raise AssertionError(f"protoc failed on the corpus: {result.stderr[-2000:]}")


def load_route_modules(root: Path) -> list[Binding]:
    """BINDINGS of every generated `_restmon_routes.py` under root (they import only specs)."""
    bindings: list[Binding] = []
    for number, path in enumerate(sorted(root.rglob("_restmon_routes.py"))):
        spec = importlib.util.spec_from_file_location(f"_router_corpus_{number}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        bindings.extend(module.BINDINGS)
    return bindings


def synthesize(binding: Binding, deep_segments: int = 1) -> tuple[str, dict[str, str]]:
    """A concrete path for `binding` and the params it must bind: `*` -> `~w<i>`, `**` -> `~d<i>`.

    `~` appears in no googleapis literal, so only a route with the same shape (or one more
    specific at a `**`) can take the path.
    """
    pieces: list[list[str]] = []
    for position, segment in enumerate(binding.segments):
        if segment.kind is SegmentKind.LITERAL:
            pieces.append([segment.value])
        elif segment.kind is SegmentKind.WILDCARD:
            pieces.append([f"~w{position}"])
        else:
            pieces.append([f"~d{position}.{k}" for k in range(deep_segments)])
    path = "/" + "/".join(s for piece in pieces for s in piece)
    if binding.verb:
        path += ":" + binding.verb
    params = {}
    for v in binding.variables:
        raw = "/".join(s for piece in pieces[v.start : v.end] for s in piece)
        keep = (
            SLASH if binding.fully_decode_reserved_expansion else RESERVED
        ) * v.reserved_expansion
        params[str(v.field)] = decode_expected(raw, keep)
    return path, params
