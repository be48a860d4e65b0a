"""The path-template AST: frozen, validated values whose str() prints the template back."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

# RFC 3986 §3.3 (https://www.rfc-editor.org/rfc/rfc3986#section-3.3):
#   pchar       = unreserved / pct-encoded / sub-delims / ":" / "@"
#   unreserved  = ALPHA / DIGIT / "-" / "." / "_" / "~"
#   pct-encoded = "%" HEXDIG HEXDIG
#   sub-delims  = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
# PCHARS holds the single characters; "%" is legal only as the start of pct-encoded.
UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
SUB_DELIMS = frozenset("!$&'()*+,;=")
PCHARS = UNRESERVED | SUB_DELIMS | frozenset(":@")
HEXDIGITS = frozenset(string.hexdigits)
# A protobuf identifier (the IDENT of http.proto's FieldPath): [A-Za-z_][A-Za-z0-9_]*.
IDENT_FIRST = frozenset(string.ascii_letters + "_")
IDENT_REST = IDENT_FIRST | frozenset(string.digits)

_PCHARS_RE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Literal:
    """A segment matched verbatim, kept exactly as written (percent escapes included): `v1`."""

    value: str

    def __post_init__(self) -> None:
        if not _PCHARS_RE.fullmatch(self.value) or self.value in ("*", "**"):
            raise ValueError(f"not a literal segment: {self.value!r}")

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Wildcard:
    """`*`: exactly one non-empty path segment."""

    def __str__(self) -> str:
        return "*"


@dataclass(frozen=True, slots=True)
class DeepWildcard:
    """`**`: zero or more path segments."""

    def __str__(self) -> str:
        return "**"


Segment: TypeAlias = Literal | Wildcard | DeepWildcard
_SEGMENT_TYPES = (Literal, Wildcard, DeepWildcard)


@dataclass(frozen=True, slots=True)
class Variable:
    """`{a.b=shelves/*}`; `{a}` has `explicit=False` and stands for `{a=*}`."""

    field_path: tuple[str, ...]
    segments: tuple[Segment, ...]
    explicit: bool

    def __post_init__(self) -> None:
        if not self.field_path or not all(_IDENT_RE.fullmatch(n) for n in self.field_path):
            raise ValueError(f"not a field path: {self.field_path!r}")
        if not self.segments or not all(isinstance(s, _SEGMENT_TYPES) for s in self.segments):
            raise ValueError(f"not variable segments: {self.segments!r}")
        if not self.explicit and self.segments != (Wildcard(),):
            raise ValueError("a variable without '=' must have the segments (Wildcard(),)")

    def __str__(self) -> str:
        name = ".".join(self.field_path)
        if not self.explicit:
            return "{" + name + "}"
        return "{" + name + "=" + "/".join(map(str, self.segments)) + "}"


TemplateSegment: TypeAlias = Literal | Wildcard | DeepWildcard | Variable


@dataclass(frozen=True, slots=True)
class Template:
    """A whole path template: `/v1/{name=shelves/*}:publish`. `/` alone has no segments."""

    segments: tuple[TemplateSegment, ...]
    verb: str | None

    def __post_init__(self) -> None:
        if not all(isinstance(s, (*_SEGMENT_TYPES, Variable)) for s in self.segments):
            raise ValueError(f"not template segments: {self.segments!r}")
        _check_verb(self.verb, self.segments)
        if duplicate_field_path(self.segments) is not None:
            raise ValueError("the same field path is bound by two variables")
        if ambiguous_capture(self.segments) is not None:
            raise ValueError("a variable's capture depends on how two '**' split the path")

    def __str__(self) -> str:
        verb = "" if self.verb is None else ":" + self.verb
        return "/" + "/".join(map(str, self.segments)) + verb


def _check_verb(verb: str | None, segments: tuple[TemplateSegment, ...]) -> None:
    """The verb, if any, must print and parse back as one: after the last ':' of a segment."""
    last = segments[-1] if segments else None
    if verb is None:
        if isinstance(last, Literal) and ":" in last.value:
            raise ValueError("a ':' in the last literal would print as a custom verb")
    elif not _PCHARS_RE.fullmatch(verb) or ":" in verb:
        raise ValueError(f"not a custom verb: {verb!r}")
    elif last is None:
        raise ValueError("a custom verb needs a segment before it")


def duplicate_field_path(segments: Sequence[TemplateSegment]) -> int | None:
    """Index of the first variable whose field path an earlier variable already binds."""
    seen: set[tuple[str, ...]] = set()
    for index, segment in enumerate(segments):
        if isinstance(segment, Variable):
            if segment.field_path in seen:
                return index
            seen.add(segment.field_path)
    return None


def ambiguous_capture(segments: Sequence[TemplateSegment]) -> int | None:
    """Index of the first variable whose captured span depends on how two `**` split a path.

    With one `**` every other segment matches exactly one URL segment, so each match is unique.
    With several, only the cut points before the first and after the last `**` are fixed:
    `/**/x/{a=**}` is ambiguous (a may start after any `x`), `/{a=**/x/**}/{b}` is not.
    """
    deep: list[int] = []
    spans: list[tuple[int, int, int]] = []
    flat = 0
    for index, segment in enumerate(segments):
        inner = segment.segments if isinstance(segment, Variable) else (segment,)
        deep.extend(flat + i for i, s in enumerate(inner) if isinstance(s, DeepWildcard))
        if isinstance(segment, Variable):
            spans.append((index, flat, flat + len(inner)))
        flat += len(inner)
    if len(deep) < 2:
        return None
    for index, start, end in spans:
        if deep[0] < start <= deep[-1] or deep[0] < end <= deep[-1]:
            return index
    return None
