"""Tests for httprule.parse and the AST in httprule.types: accepted, rejected, printed back."""

from __future__ import annotations

import pickle
import re
import string
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.httprule import (
    DeepWildcard,
    Literal,
    Segment,
    Template,
    TemplateSegment,
    TemplateSyntaxError,
    Variable,
    Wildcard,
    compile_template,
    parse_template,
)
from protoc_gen_restmon.httprule.types import PCHARS, ambiguous_capture, duplicate_field_path

L, W, D = Literal, Wildcard(), DeepWildcard()


def var(path: str, *segments: Segment) -> Variable:
    """`var("a.b")` is `{a.b}`; `var("a", L("x"), W)` is `{a=x/*}`."""
    if not segments:
        return Variable(tuple(path.split(".")), (W,), explicit=False)
    return Variable(tuple(path.split(".")), segments, explicit=True)


def tpl(*segments: TemplateSegment, verb: str | None = None) -> Template:
    return Template(segments, verb)


VALID_TEMPLATES = [
    pytest.param("/", tpl(), id="root"),
    pytest.param("/v1/shelves", tpl(L("v1"), L("shelves")), id="literals"),
    pytest.param("/aZ09-._~", tpl(L("aZ09-._~")), id="unreserved-chars"),
    pytest.param("/!$&'()+,;=/x", tpl(L("!$&'()+,;="), L("x")), id="sub-delim-chars"),
    pytest.param("/user@host:8080/x", tpl(L("user@host:8080"), L("x")), id="colon-and-at"),
    pytest.param(
        "/a%2Fb/%e2%82%AC", tpl(L("a%2Fb"), L("%e2%82%AC")), id="percent-escapes-as-written"
    ),
    pytest.param("/v1/a*b/***", tpl(L("v1"), L("a*b"), L("***")), id="star-inside-literal"),
    pytest.param("/v1/*", tpl(L("v1"), W), id="wildcard"),
    pytest.param("/v1/**", tpl(L("v1"), D), id="deep-wildcard"),
    pytest.param("/v1/{a}", tpl(L("v1"), var("a")), id="variable"),
    pytest.param("/v1/{a=*}", tpl(L("v1"), var("a", W)), id="variable-explicit-star"),
    pytest.param("/{a.b.c}", tpl(var("a.b.c")), id="variable-field-path"),
    pytest.param("/{_a1.B_2}", tpl(var("_a1.B_2")), id="variable-identifier-chars"),
    pytest.param(
        "/v1/{name=shelves/*/books/*}",
        tpl(L("v1"), var("name", L("shelves"), W, L("books"), W)),
        id="variable-with-template",
    ),
    pytest.param("/v1/{x=**}", tpl(L("v1"), var("x", D)), id="variable-deep-wildcard"),
    pytest.param("/{x=a:b}", tpl(var("x", L("a:b"))), id="colon-inside-braces-is-no-verb"),
    pytest.param(
        "/v1/{parent=projects/*/databases/*/documents/**}/{collection_id}",
        tpl(
            L("v1"),
            var("parent", L("projects"), W, L("databases"), W, L("documents"), D),
            var("collection_id"),
        ),
        id="firestore-deep-wildcard-then-variable",
    ),
    pytest.param(
        "/v1/{name=projects/*/locations/*/keyRings/*/cryptoKeys/**}/protectedResourcesSummary",
        tpl(
            L("v1"),
            var("name", L("projects"), W, L("locations"), W, L("keyRings"), W, L("cryptoKeys"), D),
            L("protectedResourcesSummary"),
        ),
        id="kms-deep-wildcard-then-literal",
    ),
    pytest.param("/v1/books:batchGet", tpl(L("v1"), L("books"), verb="batchGet"), id="verb"),
    pytest.param(
        "/v1/{name=operations/**}:cancel",
        tpl(L("v1"), var("name", L("operations"), D), verb="cancel"),
        id="verb-after-variable",
    ),
    pytest.param("/v1/**:run", tpl(L("v1"), D, verb="run"), id="verb-after-deep-wildcard"),
    pytest.param("/a:b:c", tpl(L("a:b"), verb="c"), id="verb-after-last-colon"),
    pytest.param("/v1/a:b/c", tpl(L("v1"), L("a:b"), L("c")), id="colon-in-earlier-segment"),
    pytest.param("/x:do%20it", tpl(L("x"), verb="do%20it"), id="verb-with-escape"),
    pytest.param("/**/x/**", tpl(D, L("x"), D), id="two-deep-wildcards-without-capture"),
    pytest.param(
        "/{a=**/x/**}/{b}",
        tpl(var("a", D, L("x"), D), var("b")),
        id="two-deep-wildcards-in-one-variable",
    ),
    pytest.param("/{a}/{a.b}", tpl(var("a"), var("a.b")), id="overlapping-paths-left-to-bindings"),
]

_TWICE = "the variable's capture depends on how two '**' split the path"
_IDENT = "invalid identifier: expected a letter or '_', found"
BAD_TEMPLATES = [
    pytest.param("", 0, "empty template", id="empty"),
    pytest.param("v1/a", 0, "a template must start with '/'", id="no-leading-slash"),
    pytest.param("/v1/", 3, "trailing '/'", id="trailing-slash"),
    pytest.param("//", 1, "empty segment", id="only-slashes"),
    pytest.param("/v1//a", 4, "empty segment", id="empty-segment"),
    pytest.param("/:cancel", 1, "empty segment before the custom verb", id="verb-on-root"),
    pytest.param("/v1/:cancel", 4, "empty segment before the custom verb", id="verb-on-empty"),
    pytest.param("/v1/{}", 4, "empty variable '{}'", id="empty-variable"),
    pytest.param("/{a={b}}", 4, "nested variable", id="nested-variable"),
    pytest.param("/{a=x/{b}}", 6, "nested variable", id="nested-variable-after-slash"),
    pytest.param("/{a=x{b}}", 5, "nested variable", id="nested-variable-in-literal"),
    pytest.param("/{a{b}}", 3, "nested variable", id="nested-variable-after-path"),
    pytest.param("/a{x}", 2, "a variable must be a whole segment", id="literal-then-variable"),
    pytest.param("/{x}a", 4, "a variable must be a whole segment", id="variable-then-literal"),
    pytest.param(
        "/{x}{y}", 4, "a variable must be a whole segment", id="two-variables-one-segment"
    ),
    pytest.param("/{x}:a/b", 4, "a variable must be a whole segment", id="colon-after-variable"),
    pytest.param("/v1/{name", 4, "unbalanced '{'", id="unclosed-brace"),
    pytest.param("/{a.", 1, "unbalanced '{'", id="unclosed-after-dot"),
    pytest.param("/{a=b/c:d", 1, "unbalanced '{'", id="unclosed-in-template"),
    pytest.param("/{a=", 1, "unbalanced '{'", id="unclosed-after-equals"),
    pytest.param("/v1}", 3, "unbalanced '}'", id="stray-closing-brace"),
    pytest.param("/{a}}", 4, "unbalanced '}'", id="extra-closing-brace"),
    pytest.param("/}", 1, "unbalanced '}'", id="closing-brace-as-segment"),
    pytest.param("/{1}", 2, f"{_IDENT} '1'", id="ident-digit"),
    pytest.param("/{a-b}", 3, "invalid character '-' in field path", id="ident-dash"),
    pytest.param("/{a/b}", 3, "invalid character '/' in field path", id="ident-slash"),
    pytest.param("/{a..b}", 4, f"{_IDENT} '.'", id="ident-double-dot"),
    pytest.param("/{a.}", 4, _IDENT + " '}'", id="ident-dot-end"),
    pytest.param("/{=*}", 2, f"{_IDENT} '='", id="no-field-path"),
    pytest.param("/{é}", 2, f"{_IDENT} 'é'", id="ident-non-ascii"),
    pytest.param("/{a=}", 4, "empty segment", id="empty-variable-template"),
    pytest.param("/{a=b/}", 6, "empty segment", id="variable-trailing-slash"),
    pytest.param("/{a=b//c}", 6, "empty segment", id="variable-empty-segment"),
    pytest.param("/a:", 2, "empty custom verb after ':'", id="empty-verb"),
    pytest.param("/{a}:", 4, "empty custom verb after ':'", id="empty-verb-after-variable"),
    pytest.param("/a:b{c}", 4, "invalid character '{' in custom verb", id="brace-in-verb"),
    pytest.param("/a:b c", 4, "invalid character ' ' in custom verb", id="space-in-verb"),
    pytest.param("/a%G1", 2, "invalid percent escape '%G1'", id="escape-not-hex"),
    pytest.param("/a%2", 2, "invalid percent escape '%2'", id="escape-truncated"),
    pytest.param("/%2/x", 1, "invalid percent escape '%2'", id="escape-cut-by-slash"),
    pytest.param("/a:%zz", 3, "invalid percent escape '%zz'", id="escape-in-verb"),
    pytest.param("/{x=a%}", 5, "invalid percent escape '%'", id="escape-in-variable"),
    pytest.param("/{a}/{a}", 6, "field path 'a' is bound twice", id="same-variable-twice"),
    pytest.param("/{a.b}/x/{a.b=**}", 10, "field path 'a.b' is bound twice", id="same-path-twice"),
    pytest.param("/a b", 2, "invalid character ' ' in literal", id="space"),
    pytest.param("/a?b", 2, "invalid character '?' in literal", id="query-char"),
    pytest.param("/a#", 2, "invalid character '#' in literal", id="fragment-char"),
    pytest.param("/[x]", 1, "invalid character '[' in literal", id="gen-delim"),
    pytest.param("/caf\u00e9", 4, "invalid character 'é' in literal", id="non-ascii"),
    pytest.param("/a\nb", 2, "invalid character '\\n' in literal", id="newline"),
    pytest.param("/{a=**}/x/**", 1, _TWICE, id="capture-between-deep-wildcards"),
    pytest.param("/**/x/{a=**}", 6, _TWICE, id="capture-after-first-deep-wildcard"),
    pytest.param("/**/{a}/**", 4, _TWICE, id="single-capture-between-deep-wildcards"),
]


@pytest.mark.parametrize(("text", "expected"), VALID_TEMPLATES)
def test_parse_template_accepts(text: str, expected: Template) -> None:
    assert parse_template(text) == expected


@pytest.mark.parametrize(("text", "expected"), VALID_TEMPLATES)
def test_template_str_prints_it_back(text: str, expected: Template) -> None:
    assert str(expected) == text


@pytest.mark.parametrize(("text", "position", "reason"), BAD_TEMPLATES)
def test_parse_template_rejects(text: str, position: int, reason: str) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        parse_template(text)
    assert caught.value.reason == reason
    assert caught.value.position == position
    assert caught.value.template == text


def test_template_syntax_error_message_names_reason_position_and_template() -> None:
    with pytest.raises(
        TemplateSyntaxError, match=r"^unbalanced '\{' at position 4 in '/v1/\{name'$"
    ):
        parse_template("/v1/{name")


def test_template_syntax_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(TemplateSyntaxError("/a:", 2, "empty custom verb")))
    assert (error.template, error.position, error.reason) == ("/a:", 2, "empty custom verb")


INVALID_NODES: list[object] = [
    pytest.param(lambda: L(""), "not a literal segment", id="literal-empty"),
    pytest.param(lambda: L("*"), "not a literal segment", id="literal-star"),
    pytest.param(lambda: L("a/b"), "not a literal segment", id="literal-slash"),
    pytest.param(lambda: L("%4"), "not a literal segment", id="literal-bad-escape"),
    pytest.param(lambda: Variable((), (W,), True), "not a field path", id="variable-no-path"),
    pytest.param(lambda: Variable(("1",), (W,), True), "not a field path", id="variable-bad-ident"),
    pytest.param(lambda: Variable(("a",), (), True), "not variable segments", id="variable-empty"),
    pytest.param(
        lambda: Variable(("a",), (var("b"),), True),  # type: ignore[arg-type]
        "not variable segments",
        id="variable-nested",
    ),
    pytest.param(
        lambda: Variable(("a",), (D,), False), "without '='", id="variable-implicit-not-star"
    ),
    pytest.param(lambda: tpl(verb="x"), "needs a segment", id="template-verb-on-root"),
    pytest.param(lambda: tpl(L("a"), verb=""), "not a custom verb", id="template-empty-verb"),
    pytest.param(lambda: tpl(L("a"), verb="b:c"), "not a custom verb", id="template-colon-in-verb"),
    pytest.param(lambda: tpl(L("a:b")), "would print as a custom verb", id="template-colon-last"),
    pytest.param(lambda: tpl(var("a"), var("a")), "bound by two variables", id="template-dup"),
    pytest.param(lambda: tpl(D, var("a"), D), "two '**'", id="template-ambiguous"),
]


@pytest.mark.parametrize(("build", "message"), INVALID_NODES)
def test_ast_nodes_refuse_invalid_values(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


# Hypothesis: templates generated from the grammar, and arbitrary text.

_HEX = st.sampled_from(string.hexdigits)
_ESCAPES = st.tuples(_HEX, _HEX).map(lambda pair: "%" + "".join(pair))


def _literal_texts(*, colon: bool) -> st.SearchStrategy[str]:
    chars = st.sampled_from(sorted(PCHARS if colon else PCHARS - {":"}))
    texts = st.lists(chars | _ESCAPES, min_size=1, max_size=5).map("".join)
    return texts.filter(lambda text: text not in ("*", "**"))


_IDENTS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,4}", fullmatch=True)
_FIELD_PATHS = st.lists(_IDENTS, min_size=1, max_size=3).map(tuple)
_PLAIN: st.SearchStrategy[Segment] = st.one_of(
    _literal_texts(colon=True).map(Literal), st.just(W), st.just(D)
)
_VARIABLES = st.one_of(
    _FIELD_PATHS.map(lambda path: Variable(path, (W,), explicit=False)),
    st.builds(
        lambda path, inner: Variable(path, tuple(inner), explicit=True),
        _FIELD_PATHS,
        st.lists(_PLAIN, min_size=1, max_size=4),
    ),
)


@st.composite
def templates(draw: st.DrawFn) -> Template:
    """A valid Template built from the grammar's productions."""
    segments: list[TemplateSegment] = draw(st.lists(_PLAIN | _VARIABLES, max_size=6))
    verb = draw(st.none() | _literal_texts(colon=False)) if segments else None
    last = segments[-1] if segments else None
    if verb is None and isinstance(last, Literal) and ":" in last.value:
        segments[-1] = Literal(last.value.replace(":", "@"))
    assume(duplicate_field_path(segments) is None and ambiguous_capture(segments) is None)
    return Template(tuple(segments), verb)


@given(templates())
def test_parse_template_reads_back_generated_templates(template: Template) -> None:
    text = str(template)
    assert parse_template(text) == template
    assert str(parse_template(text)) == text


@given(templates())
def test_compile_template_agrees_with_generated_ast(template: Template) -> None:
    compiled = compile_template(template)
    variables = [s for s in template.segments if isinstance(s, Variable)]
    assert [v.field_path for v in compiled.variables] == [v.field_path for v in variables]
    for spec, variable in zip(compiled.variables, variables, strict=True):
        assert compiled.segments[spec.start : spec.end] == variable.segments
        assert spec.reserved_expansion == (variable.segments != (W,))
    ends = [0] + [end for v in compiled.variables for end in (v.start, v.end)]
    assert ends == sorted(ends)
    outside = [s for s in template.segments if not isinstance(s, Variable)]
    assert len(compiled.segments) == len(outside) + sum(len(v.segments) for v in variables)
    assert compiled.verb == (template.verb or "")


def _check_total(text: str) -> None:
    """parse_template returns a Template that prints back, or raises TemplateSyntaxError."""
    try:
        template = parse_template(text)
    except TemplateSyntaxError as error:
        assert error.template == text and error.reason
        assert 0 <= error.position <= max(len(text) - 1, 0)
    else:
        assert str(template) == text


@given(st.text())
def test_parse_template_on_any_text_raises_only_syntax_errors(text: str) -> None:
    _check_total(text)


_GRAMMAR_TEXT = st.text(alphabet="/{}*=.:%" + "ab_1F@ é", max_size=24)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(_GRAMMAR_TEXT | _GRAMMAR_TEXT.map(lambda text: "/" + text))
def test_parse_template_on_grammar_like_text_raises_only_syntax_errors(text: str) -> None:
    _check_total(text)
