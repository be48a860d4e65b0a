"""Tests for httprule.compile: flat segments, variable spans, verbs and route shapes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoc_gen_restmon.httprule import (
    CompiledTemplate,
    CompiledVariable,
    DeepWildcard,
    Literal,
    Wildcard,
    compile_template,
    parse_template,
    shape,
)
from protoc_gen_restmon.runtime.router import DuplicateRouteError, Router
from tests.support.router_tools import make_binding

L, W, D = Literal, Wildcard(), DeepWildcard()


def cvar(path: str, start: int, end: int, *, reserved: bool) -> CompiledVariable:
    return CompiledVariable(tuple(path.split(".")), start, end, reserved_expansion=reserved)


COMPILED_TEMPLATES = [
    pytest.param("/", CompiledTemplate((), (), ""), id="root"),
    pytest.param("/v1/shelves", CompiledTemplate((L("v1"), L("shelves")), (), ""), id="literals"),
    pytest.param("/v1/**", CompiledTemplate((L("v1"), D), (), ""), id="deep-wildcard"),
    pytest.param(
        "/v1/{a}",
        CompiledTemplate((L("v1"), W), (cvar("a", 1, 2, reserved=False),), ""),
        id="variable",
    ),
    pytest.param(
        "/v1/{a=*}",
        CompiledTemplate((L("v1"), W), (cvar("a", 1, 2, reserved=False),), ""),
        id="variable-explicit-star",
    ),
    pytest.param(
        "/{a.b.c}",
        CompiledTemplate((W,), (cvar("a.b.c", 0, 1, reserved=False),), ""),
        id="field-path",
    ),
    pytest.param(
        "/{x=a}",
        CompiledTemplate((L("a"),), (cvar("x", 0, 1, reserved=True),), ""),
        id="variable-literal",
    ),
    pytest.param(
        "/v1/{x=**}",
        CompiledTemplate((L("v1"), D), (cvar("x", 1, 2, reserved=True),), ""),
        id="var-deep",
    ),
    pytest.param(
        "/v1/{name=shelves/*/books/*}",
        CompiledTemplate(
            (L("v1"), L("shelves"), W, L("books"), W), (cvar("name", 1, 5, reserved=True),), ""
        ),
        id="variable-with-template",
    ),
    pytest.param(
        "/v1/{parent=projects/*/databases/*/documents/**}/{collection_id}",
        CompiledTemplate(
            (L("v1"), L("projects"), W, L("databases"), W, L("documents"), D, W),
            (cvar("parent", 1, 7, reserved=True), cvar("collection_id", 7, 8, reserved=False)),
            "",
        ),
        id="firestore",
    ),
    pytest.param(
        "/v1/{name=projects/*/cryptoKeys/**}/protectedResourcesSummary",
        CompiledTemplate(
            (L("v1"), L("projects"), W, L("cryptoKeys"), D, L("protectedResourcesSummary")),
            (cvar("name", 1, 5, reserved=True),),
            "",
        ),
        id="kms",
    ),
    pytest.param(
        "/v1/{name=operations/**}:cancel",
        CompiledTemplate(
            (L("v1"), L("operations"), D), (cvar("name", 1, 3, reserved=True),), "cancel"
        ),
        id="verb",
    ),
    pytest.param(
        "/{a}/x/{b=y/*}/{c}:do",
        CompiledTemplate(
            (W, L("x"), L("y"), W, W),
            (
                cvar("a", 0, 1, reserved=False),
                cvar("b", 2, 4, reserved=True),
                cvar("c", 4, 5, reserved=False),
            ),
            "do",
        ),
        id="several-variables",
    ),
]


@pytest.mark.parametrize(("text", "expected"), COMPILED_TEMPLATES)
def test_compile_template_flattens_variables_into_spans(
    text: str, expected: CompiledTemplate
) -> None:
    assert compile_template(parse_template(text)) == expected


SAME_SHAPE = [
    pytest.param("/v1/{name=shelves/*}", "/v1/{parent=shelves/*}", id="renamed-variable"),
    pytest.param("/v1/{a}", "/v1/{a=*}", id="implicit-and-explicit-star"),
    pytest.param("/v1/{a.b}", "/v1/{c}", id="field-path-and-name"),
    pytest.param("/v1/{a}", "/v1/*", id="variable-and-bare-wildcard"),
    pytest.param("/v1/{name=shelves/*}", "/v1/shelves/{id}", id="same-urls-other-split"),
    pytest.param("/v1/{x=**}:run", "/v1/{y=**}:run", id="deep-variable-with-verb"),
    # Escapes compare as the router compares them (RFC 3986 §6.2.2.1-2).
    pytest.param("/v1/a%41", "/v1/aA", id="unreserved-escape-decoded"),
    pytest.param("/v1/a%2fb", "/v1/a%2Fb", id="hex-case"),
    pytest.param("/v1/{a}:%72un", "/v1/{a}:run", id="verb-escape-decoded"),
]

DIFFERENT_SHAPE = [
    pytest.param("/v1/{a}", "/v1/{a=**}", id="star-and-deep"),
    pytest.param("/v1/{a}", "/v2/{a}", id="different-literal"),
    pytest.param("/v1/{a}", "/v1/{a}:get", id="verb-and-none"),
    pytest.param("/v1/{a}:get", "/v1/{a}:list", id="different-verbs"),
    pytest.param("/v1/{a}", "/v1/{a}/x", id="longer"),
]


@pytest.mark.parametrize(("left", "right"), SAME_SHAPE)
def test_shape_ignores_variable_names(left: str, right: str) -> None:
    assert shape(parse_template(left)) == shape(parse_template(right))


@pytest.mark.parametrize(("left", "right"), DIFFERENT_SHAPE)
def test_shape_tells_routes_apart(left: str, right: str) -> None:
    assert shape(parse_template(left)) != shape(parse_template(right))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("/", "/", id="root"),
        pytest.param("/v1/{name=shelves/*}:get", "/v1/shelves/*:get", id="variable-and-verb"),
        pytest.param("/{a}/{b=**}", "/*/**", id="variables-only"),
    ],
)
def test_shape_prints_the_flat_template(text: str, expected: str) -> None:
    assert shape(parse_template(text)) == expected


BAD_SPANS = [
    pytest.param(cvar("a", 0, 0, reserved=False), id="empty"),
    pytest.param(cvar("a", -1, 1, reserved=False), id="negative-start"),
    pytest.param(cvar("a", 0, 3, reserved=True), id="past-the-end"),
    pytest.param(cvar("a", 2, 1, reserved=False), id="reversed"),
]


@pytest.mark.parametrize("variable", BAD_SPANS)
def test_compiled_template_refuses_spans_outside_its_segments(variable: CompiledVariable) -> None:
    with pytest.raises(ValueError, match="variable span outside the segments"):
        CompiledTemplate((L("v1"), W), (variable,), "")


def test_compiled_values_are_frozen() -> None:
    compiled = compile_template(parse_template("/v1/{a}"))
    with pytest.raises(AttributeError):
        compiled.verb = "x"  # type: ignore[misc]


# Segments and verbs that differ only in how they are escaped, or not at all.
_SEGMENTS = st.sampled_from(["a", "%61", "%41", "A", "b%2fc", "b%2Fc", "{x}", "**", "*"])
_VERBS = st.sampled_from(["", ":run", ":%72un", ":RUN"])


@st.composite
def route_pairs(draw: st.DrawFn) -> tuple[str, str]:
    def one() -> str:
        # One `**` at most: a variable between two is ambiguous, a syntax error.
        segments = draw(
            st.lists(_SEGMENTS, min_size=1, max_size=3).filter(lambda s: s.count("**") <= 1)
        )
        named = [s.replace("x", f"x{i}") for i, s in enumerate(segments)]
        return "/" + "/".join(named) + draw(_VERBS)

    return one(), one()


@given(route_pairs())
def test_shape_agrees_with_the_router_on_duplicates(pair: tuple[str, str]) -> None:
    """The plugin refuses exactly the pairs a gateway would refuse at construction."""
    left, right = pair
    same = shape(parse_template(left)) == shape(parse_template(right))
    bindings = [make_binding(f"GET {left}", "A"), make_binding(f"GET {right}", "B")]
    try:
        Router(bindings)
    except DuplicateRouteError:
        refused = True
    else:
        refused = False
    assert same == refused, pair
