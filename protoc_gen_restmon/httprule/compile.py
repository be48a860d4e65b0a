"""Flatten a parsed Template into the segment list and capture spans that a matcher walks."""

from __future__ import annotations

from dataclasses import dataclass

from protoc_gen_restmon.httprule.types import Segment, Template, Variable, Wildcard


@dataclass(frozen=True, slots=True)
class CompiledVariable:
    """A variable that captures the URL segments matched by `segments[start:end]`.

    `multi_segment` is True unless the variable's own template is exactly `*` (`{a}`, `{a=*}`):
    `{x=a/*}`, `{x=**}` and even `{x=a}` keep reserved characters escaped when decoded.
    """

    field_path: tuple[str, ...]
    start: int
    end: int
    multi_segment: bool


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
    multi_segment = variable.segments != (Wildcard(),)
    return CompiledVariable(variable.field_path, start, end, multi_segment)


def shape(template: Template) -> str:
    """What a template matches, without variable names: two routes with one shape collide.

    Variables are replaced by their own templates, so `/v1/{name=shelves/*}`,
    `/v1/{parent=shelves/*}` and `/v1/shelves/{id}` all have the shape `/v1/shelves/*` (they match
    the same URLs), and `{a}` and `{a=*}` both print `*`. Literals compare as written (`%41` is not
    `A`).
    """
    return str(compile_template(template))
