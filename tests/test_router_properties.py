"""Router properties (Hypothesis): templates from the grammar, concrete URLs synthesized for them.

1. Round trip: a URL built from a template's segments, with random values sent raw or
   percent-encoded in random hex case, routes to that template's binding with the values
   decoded as the variable's kind requires.
2. Agreement: on tables of templates over a tiny alphabet (so that routes compete), the router
   picks what the brute-force oracle of tests/support/router_tools.py picks, and fails as it fails.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.httprule import (
    DeepWildcard,
    Literal,
    Template,
    TemplateSegment,
    Variable,
    Wildcard,
)
from protoc_gen_restmon.httprule.types import PCHARS, ambiguous_capture
from protoc_gen_restmon.runtime.router import Router
from protoc_gen_restmon.runtime.specs import Binding, SegmentKind
from protoc_gen_restmon.runtime.status import RpcError
from tests.support.router_tools import RESERVED, SLASH, make_binding, oracle

UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Unit:
    """One character of a URL segment and the text that sends it (itself or `%XX` escapes)."""

    char: str
    sent: str

    def expected(self, keep: str) -> str:
        return self.sent if self.sent.startswith("%") and self.char in keep else self.char


def _escape(char: str, upper: bool) -> str:
    return "".join(f"%{b:02X}" if upper else f"%{b:02x}" for b in char.encode())


@st.composite
def value_units(draw: st.DrawFn) -> Unit:
    """Any character: sent raw when RFC 3986 allows it in a segment, else escaped."""
    char = draw(st.characters(codec="utf-8") | st.sampled_from("/%:@!$&'()*+,;=?#[] "))
    raw_allowed = char in PCHARS
    if raw_allowed and draw(st.booleans()):
        return Unit(char, char)
    return Unit(char, _escape(char, draw(st.booleans())))


# Template literals: pchars and escapes of ASCII bytes (so captured literals stay UTF-8).
_LITERAL_TOKENS = st.sampled_from(sorted(PCHARS - {":"})) | st.integers(0, 127).map(
    lambda b: f"%{b:02X}"
)
_LITERALS = (
    st.lists(_LITERAL_TOKENS, min_size=1, max_size=4)
    .map("".join)
    .filter(lambda t: t not in ("*", "**"))
    .map(Literal)
)
_PLAIN = st.one_of(_LITERALS, st.just(Wildcard()), st.just(DeepWildcard()))


@st.composite
def templates(
    draw: st.DrawFn, plain: st.SearchStrategy[Literal | Wildcard | DeepWildcard], size: int = 5
) -> str:
    """A valid template string; variable names are unique by construction (`v0`, `v1`, …)."""
    segments: list[TemplateSegment] = []
    for index in range(draw(st.integers(0, size))):
        if draw(st.booleans()):
            segments.append(draw(plain))
        else:
            inner = tuple(draw(st.lists(plain, min_size=1, max_size=3)))
            explicit = inner != (Wildcard(),) or draw(st.booleans())
            segments.append(Variable((f"v{index}",), inner, explicit))
        if ambiguous_capture(segments) is not None:  # a second `**` around a variable
            segments.pop()
    verb = draw(st.sampled_from([None, "go", "r%41n", "x"])) if segments else None
    return str(Template(tuple(segments), verb))


def _literal_units(text: str, draw: st.DrawFn) -> list[Unit]:
    """A literal as sent: unreserved characters raw or escaped, escapes in either hex case."""
    units, i = [], 0
    while i < len(text):
        escaped = text[i] == "%"
        char = chr(int(text[i + 1 : i + 3], 16)) if escaped else text[i]
        i += 3 if escaped else 1
        if char in UNRESERVED:
            sent = char if draw(st.booleans()) else _escape(char, draw(st.booleans()))
        else:  # a sub-delim stays raw, another escape stays an escape: only its case may change
            sent = _escape(char, draw(st.booleans())) if escaped else char
        units.append(Unit(char, sent))
    return units


@st.composite
def concrete_paths(draw: st.DrawFn, binding: Binding) -> tuple[str, dict[str, str]]:
    """A URL for `binding` and the params it must bind."""
    positions: list[list[list[Unit]]] = []
    for segment in binding.segments:
        if segment.kind is SegmentKind.LITERAL:
            positions.append([_literal_units(segment.value, draw)])
        else:
            low = 1 if segment.kind is SegmentKind.WILDCARD else 0
            count = draw(st.integers(low, 1 if low else 3))
            values = st.lists(value_units(), min_size=1, max_size=5)
            positions.append(draw(st.lists(values, min_size=count, max_size=count)))
    sent = ["".join(u.sent for u in units) for position in positions for units in position]
    if binding.verb:
        assume(sent and sent[-1])  # `/:go` has an empty segment before the verb
        sent[-1] += ":" + binding.verb
    params = {}
    for variable in binding.variables:
        keep = SLASH if binding.fully_decode_reserved_expansion else RESERVED
        keep = keep if variable.reserved_expansion else ""
        segments = [units for p in positions[variable.start : variable.end] for units in p]
        params[str(variable.field)] = "/".join(
            "".join(u.expected(keep) for u in units) for units in segments
        )
    return "/" + "/".join(sent), params


@SETTINGS
@given(st.data(), templates(_PLAIN), st.booleans(), st.sampled_from(["GET", "POST", "*"]))
def test_synthesized_url_routes_to_its_binding(
    data: st.DataObject, template: str, fully_decode: bool, http_method: str
) -> None:
    spec = f"{http_method} {template}" + (" fully_decode" if fully_decode else "")
    binding = make_binding(spec)
    path, params = data.draw(concrete_paths(binding))
    found = Router([binding]).match("GET" if http_method == "*" else http_method, path)
    assert found.binding is binding
    assert {str(field): value for field, value in found.params} == params


# Tables over a tiny alphabet: `a` and `%61` are the same literal, `x`/`y` the verbs.
_TINY = st.one_of(
    st.sampled_from([Literal("a"), Literal("b"), Literal("%61")]),
    st.just(Wildcard()),
    st.just(DeepWildcard()),
)
_METHODS = st.sampled_from(["GET", "GET", "GET", "POST", "HEAD", "*"])  # GET mostly: they compete
_ROUTES = st.tuples(_METHODS, templates(_TINY, 3))
_SEGMENT_VALUES = st.sampled_from(["a", "b", "c", "%61", "a:x", "b:z"])


@st.composite
def tiny_paths(draw: st.DrawFn, bindings: list[Binding]) -> str:
    """A path made for one of the bindings (so that it usually matches), or made up."""
    if draw(st.booleans()):
        binding = draw(st.sampled_from(bindings))
        sent: list[str] = []
        for segment in binding.segments:
            if segment.kind is SegmentKind.LITERAL:
                sent.append(segment.value)
            else:
                low = 1 if segment.kind is SegmentKind.WILDCARD else 0
                sent += draw(st.lists(_SEGMENT_VALUES, min_size=low, max_size=1 if low else 2))
        verb = ":" + binding.verb if binding.verb else ""
    else:
        sent = draw(st.lists(_SEGMENT_VALUES, max_size=4))
        verb = draw(st.sampled_from(["", ":x", ":y", ":rAn", ":r%41n"]))
    if verb and sent and sent[-1]:
        sent[-1] += verb
    return "/" + "/".join(sent)


@settings(SETTINGS, max_examples=600)
@given(st.data(), st.lists(_ROUTES, min_size=1, max_size=8))
def test_router_agrees_with_oracle(data: st.DataObject, routes: list[tuple[str, str]]) -> None:
    candidates = [make_binding(f"{m} {t}", f"M{i}") for i, (m, t) in enumerate(routes)]
    router = Router(candidates, on_duplicate="skip")
    path = data.draw(tiny_paths(list(router.bindings)))
    http_method = data.draw(st.sampled_from(["GET", "GET", "POST", "HEAD", "PUT"]))
    expected = oracle(router.bindings, http_method, path)
    try:
        found = router.match(http_method, path)
    except RpcError as err:
        event(f"HTTP {err.http_status}")
        assert not isinstance(expected, Binding), f"{err.message}; oracle: {expected}"
        allow = dict(err.headers).get("allow")
        want = (405, ", ".join(sorted(expected))) if expected else (404, None)
        assert (err.http_status, allow) == want
    else:
        event("matched" + (" (an HTTP method *)" if found.binding.http_method == "*" else ""))
        assert found.binding is expected
