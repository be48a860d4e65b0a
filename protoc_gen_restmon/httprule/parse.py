"""Parse a google.api.http path template into a Template, or say where and why it is wrong."""

from __future__ import annotations

from typing import NoReturn

from protoc_gen_restmon.httprule.types import (
    HEXDIGITS,
    IDENT_FIRST,
    IDENT_REST,
    PCHARS,
    DeepWildcard,
    Literal,
    Segment,
    Template,
    TemplateSegment,
    Variable,
    Wildcard,
    ambiguous_capture,
)

# The grammar, from google/api/http.proto (HttpRule):
#
#   Template = "/" Segments [ Verb ] ;
#   Segments = Segment { "/" Segment } ;
#   Segment  = "*" | "**" | LITERAL | Variable ;
#   Variable = "{" FieldPath [ "=" Segments ] "}" ;
#   FieldPath = IDENT { "." IDENT } ;
#   Verb     = ":" LITERAL ;
#
# with LITERAL = 1*pchar (RFC 3986 §3.3, see types.py) and these decisions
# (docs/http-transcoding.md §1):
# - "/" alone is the root template; otherwise every segment is non-empty and no "/" trails.
# - The verb is the text after the last ":" of the last segment, outside braces; a ":" anywhere
#   else is an ordinary pchar (`/v1/a:b/c`, `{x=a:b}`).
# - A variable's template holds no variable, and a variable is always a whole segment.
# - "**" may be followed by more segments, and a template may hold several "**" as long as every
#   variable's capture stays unambiguous (see types.ambiguous_capture).
# - No field path is bound twice.
# The parser checks everything before it builds a node, so Template's own checks never fire.


class TemplateSyntaxError(Exception):
    """A path template that does not follow the grammar; `position` is a 0-based offset into it."""

    def __init__(self, template: str, position: int, reason: str) -> None:
        super().__init__(template, position, reason)
        self.template = template
        self.position = position
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason} at position {self.position} in {self.template!r}"


def parse_template(text: str) -> Template:
    """Parse a path template: `/v1/{name=shelves/*}:get` -> Template((Literal('v1'), ...), 'get').

    Raises TemplateSyntaxError, and nothing else, for any text that is not a valid template.
    """
    if not text:
        raise TemplateSyntaxError(text, 0, "empty template")
    if text[0] != "/":
        raise TemplateSyntaxError(text, 0, "a template must start with '/'")
    if text == "/":
        return Template((), None)
    colon = _verb_colon(text)
    parser = _Parser(text, len(text) if colon is None else colon)
    segments = parser.template_segments()
    verb = None if colon is None else _parse_verb(text, colon)
    return Template(segments, verb)


def _verb_colon(text: str) -> int | None:
    """Offset of the last ':' of the last segment, outside braces, if there is one."""
    depth, colon = 0, None
    for offset, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
        elif depth == 0 and char == "/":
            colon = None
        elif depth == 0 and char == ":":
            colon = offset
    return colon


def _parse_verb(text: str, colon: int) -> str:
    if colon + 1 == len(text):
        raise TemplateSyntaxError(text, colon, "empty custom verb after ':'")
    _check_pchars(text, colon + 1, len(text), "custom verb")
    return text[colon + 1 :]


def _check_pchars(text: str, start: int, end: int, what: str) -> None:
    """Check that text[start:end] is made of pchars and valid %XX escapes."""
    offset = start
    while offset < end:
        char = text[offset]
        if char == "%":
            escape = text[offset : min(offset + 3, end)]
            if len(escape) < 3 or not all(c in HEXDIGITS for c in escape[1:]):
                raise TemplateSyntaxError(text, offset, f"invalid percent escape {escape!r}")
            offset += 3
        elif char in PCHARS:
            offset += 1
        else:
            raise TemplateSyntaxError(text, offset, f"invalid character {char!r} in {what}")


class _Parser:
    """Recursive descent over text[:end] (the template without its verb)."""

    def __init__(self, text: str, end: int) -> None:
        self.text = text
        self.end = end
        self.pos = 1  # after the leading "/"
        self.bound: set[tuple[str, ...]] = set()
        self.starts: list[int] = []  # offset of each top-level segment

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.end else ""

    def fail(self, reason: str, position: int | None = None) -> NoReturn:
        raise TemplateSyntaxError(self.text, self.pos if position is None else position, reason)

    def template_segments(self) -> tuple[TemplateSegment, ...]:
        segments = [self.top_segment()]
        while self.peek() == "/":
            self.pos += 1
            segments.append(self.top_segment())
        if self.peek() == "}":
            self.fail("unbalanced '}'")
        ambiguous = ambiguous_capture(segments)
        if ambiguous is not None:
            reason = "the variable's capture depends on how two '**' split the path"
            self.fail(reason, self.starts[ambiguous])
        return tuple(segments)

    def top_segment(self) -> TemplateSegment:
        self.starts.append(self.pos)
        if self.peek() != "{":
            segment = self.plain_segment(None)
            if self.peek() == "{":
                self.fail("a variable must be a whole segment")
            return segment
        variable = self.variable()
        if self.peek() not in ("", "/", "}"):
            self.fail("a variable must be a whole segment")
        return variable

    def variable(self) -> Variable:
        opening = self.pos
        self.pos += 1
        if self.peek() == "}":
            self.fail("empty variable '{}'", opening)
        path_start = self.pos
        field_path = self.field_path(opening)
        explicit = self.peek() == "="
        segments: tuple[Segment, ...] = (Wildcard(),)
        if explicit:
            self.pos += 1
            segments = self.variable_segments(opening)
        self.expect_closing(opening)
        if field_path in self.bound:
            self.fail(f"field path {'.'.join(field_path)!r} is bound twice", path_start)
        self.bound.add(field_path)
        return Variable(field_path, segments, explicit)

    def field_path(self, opening: int) -> tuple[str, ...]:
        names = [self.ident(opening)]
        while self.peek() == ".":
            self.pos += 1
            names.append(self.ident(opening))
        return tuple(names)

    def ident(self, opening: int) -> str:
        start = self.pos
        char = self.peek()
        if not char:
            self.fail("unbalanced '{'", opening)
        if char not in IDENT_FIRST:
            self.fail(f"invalid identifier: expected a letter or '_', found {char!r}")
        while self.peek() in IDENT_REST:
            self.pos += 1
        return self.text[start : self.pos]

    def variable_segments(self, opening: int) -> tuple[Segment, ...]:
        segments = [self.plain_segment(opening)]
        while self.peek() == "/":
            self.pos += 1
            segments.append(self.plain_segment(opening))
        return tuple(segments)

    def expect_closing(self, opening: int) -> None:
        char = self.peek()
        if char == "}":
            self.pos += 1
        elif not char:
            self.fail("unbalanced '{'", opening)
        elif char == "{":
            self.fail("nested variable")
        else:
            self.fail(f"invalid character {char!r} in field path")

    def plain_segment(self, opening: int | None) -> Segment:
        """`*`, `**` or a literal; `opening` is the offset of the enclosing '{', if any."""
        start = self.pos
        while self.peek() and self.peek() not in "/{}":
            self.pos += 1
        if start == self.pos:
            self.fail_empty(opening)
        if opening is not None and self.peek() == "{":
            self.fail("nested variable")
        token = self.text[start : self.pos]
        if token == "*":
            return Wildcard()
        if token == "**":
            return DeepWildcard()
        _check_pchars(self.text, start, self.pos, "literal")
        return Literal(token)

    def fail_empty(self, opening: int | None) -> NoReturn:
        char = self.peek()
        if opening is not None:
            if not char:
                self.fail("unbalanced '{'", opening)
            self.fail("nested variable" if char == "{" else "empty segment")
        if char == "}":
            self.fail("unbalanced '}'")
        if char == "/":
            self.fail("empty segment")
        if self.end < len(self.text):
            self.fail("empty segment before the custom verb")
        self.fail("trailing '/'", self.pos - 1)
