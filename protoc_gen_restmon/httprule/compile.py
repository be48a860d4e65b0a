"""Flatten a parsed Template into the segment list and capture spans that a matcher walks."""

from __future__ import annotations

from dataclasses import dataclass

from protoc_gen_restmon.httprule.types import Literal, Segment, Template, Variable, Wildcard
from protoc_gen_restmon.runtime.router import normalize_escapes


@dataclass(frozen=True, slots=True)
class CompiledVariable:
    """A variable that captures the URL segments matched by `segments[start:end]`.

    `reserved_expansion` (RFC 6570 `{+x}`) is True unless the variable's own template is exactly
    `*` (`{a}`, `{a=*}`): `{x=a/*}`, `{x=**}` and even `{x=a}` keep reserved characters escaped
    when decoded.
    """

    field_path: tuple[str, ...]
    start: int
    end: int
    reserved_expansion: bool


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """`/v1/{name=shelves/*}:get` -> segments (v1, shelves, *), variables ((name,), 1, 3), "get"."""

    segments: tuple[Segment, ...]
    variables: tuple[CompiledVariable, ...]
    verb: str  # "" when the template has none

    def __post_init__(self) -> None:
        for variable in self.variables:
            if not 0 <= variable.start < variable.end <= len(self.segments):
                raise ValueError(f"variable span outside the segments: {variable!r}")

    def __str__(self) -> str:
        verb = f":{self.verb}" if self.verb else ""
        return "/" + "/".join(map(str, self.segments)) + verb


def compile_template(template: Template) -> CompiledTemplate:
    """Expand every variable in place and record the span of segments it captures."""
    segments: list[Segment] = []
    variables: list[CompiledVariable] = []
    for segment in template.segments:
        if isinstance(segment, Variable):
            start = len(segments)
            segments.extend(segment.segments)
            variables.append(_compile_variable(segment, start, len(segments)))
        else:
            segments.append(segment)
    return CompiledTemplate(tuple(segments), tuple(variables), template.verb or "")


def _compile_variable(variable: Variable, start: int, end: int) -> CompiledVariable:
    reserved_expansion = variable.segments != (Wildcard(),)
    return CompiledVariable(variable.field_path, start, end, reserved_expansion)


def shape(template: Template) -> str:
    """What a template matches, without variable names: two routes with one shape collide.

    Variables are replaced by their own templates, so `/v1/{name=shelves/*}`,
    `/v1/{parent=shelves/*}` and `/v1/shelves/{id}` all have the shape `/v1/shelves/*` (they match
    the same URLs), and `{a}` and `{a=*}` both print `*`. Literals and the verb are normalized as
    the router compares them (`%41` is `A`, `%2f` is `%2F`), so that the plugin refuses exactly
    the pairs a gateway would.
    """
    compiled = compile_template(template)
    parts = [
        normalize_escapes(s.value) if isinstance(s, Literal) else str(s) for s in compiled.segments
    ]
    verb = f":{normalize_escapes(compiled.verb)}" if compiled.verb else ""
    return "/" + "/".join(parts) + verb
