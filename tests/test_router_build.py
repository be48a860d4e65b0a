"""Router construction: duplicate routes (named both), bindings it refuses, the skip policy."""

from __future__ import annotations

import dataclasses

import pytest

from protoc_gen_restmon.runtime.router import DuplicateRouteError, InvalidBindingError, Router
from protoc_gen_restmon.runtime.specs import Segment, SegmentKind
from protoc_gen_restmon.runtime.status import RpcError
from tests.support.router_tools import make_binding


def build(routes: tuple[str, ...]) -> Router:
    return Router(make_binding(spec, f"M{i}") for i, spec in enumerate(routes))


# Pairs of routes with the same method, verb and shape; the second one is refused.
DUPLICATES = [
    pytest.param(
        ("GET /v1/shelves/{id}", "GET /v1/{parent=shelves/*}"), id="variable-names-ignored"
    ),
    pytest.param(("GET /v1/{x=**}", "GET /v1/**"), id="anonymous-deep-wildcard"),
    pytest.param(("POST /v1/{id}:go", "POST /v1/*:go"), id="same-verb"),
    pytest.param(("GET /v1/%61", "GET /v1/a"), id="literals-normalized"),
    pytest.param(("* /v1/{id}", "* /v1/*"), id="any-method"),
]


@pytest.mark.parametrize("routes", DUPLICATES)
def test_router_refuses_duplicate_naming_both(routes: tuple[str, ...]) -> None:
    first, second = make_binding(routes[0], "First"), make_binding(routes[1], "Second")
    expected = (
        f"duplicate route: {second} has the same HTTP method, custom verb and path shape as {first}"
    )
    with pytest.raises(DuplicateRouteError) as caught:
        Router([first, second])
    assert str(caught.value) == expected
    assert (caught.value.first, caught.value.second) == (first, second)


def test_duplicate_error_message_is_readable() -> None:
    first = make_binding("GET /v1/shelves/{id}", "GetShelf")
    second = make_binding("GET /v1/{name=shelves/*}", "FindShelf")
    with pytest.raises(DuplicateRouteError) as caught:
        Router([first, second])
    assert str(caught.value) == (
        "duplicate route: GET /v1/{name=shelves/*} test.v1.Service/FindShelf has the same "
        "HTTP method, custom verb and path shape as GET /v1/shelves/{id} test.v1.Service/GetShelf"
    )


DISTINCT = [
    pytest.param(("GET /v1/{id}", "POST /v1/{id}"), id="other-method"),
    pytest.param(("GET /v1/{id}", "* /v1/{id}"), id="any-method-next-to-exact"),
    pytest.param(("POST /v1/{id}:a", "POST /v1/{id}:b", "POST /v1/{id}"), id="other-verb"),
    pytest.param(("GET /v1/{id}", "GET /v1/{x=**}", "GET /v1/a"), id="other-shape"),
    pytest.param(("GET /v1/%2F", "GET /v1/%2f%2F"), id="reserved-escapes-differ"),
]


@pytest.mark.parametrize("routes", DISTINCT)
def test_router_accepts_routes_that_differ(routes: tuple[str, ...]) -> None:
    assert len(build(routes).bindings) == len(routes)


def test_router_skips_duplicates_on_request() -> None:
    kept = make_binding("GET /v1/shelves/{id}", "Kept")
    skipped = make_binding("GET /v1/{name=shelves/*}", "Skipped")
    router = Router([kept, skipped], on_duplicate="skip")
    assert router.bindings == (kept,)
    assert router.duplicates == ((kept, skipped),)
    assert router.match("GET", "/v1/shelves/a").binding is kept


def test_router_refuses_unknown_duplicate_policy() -> None:
    with pytest.raises(ValueError, match=r"^on_duplicate must be 'error' or 'skip', not 'warn'$"):
        Router([], on_duplicate="warn")  # type: ignore[arg-type]


def test_router_refuses_invalid_literal() -> None:
    binding = make_binding("GET /v1/a")
    bad = dataclasses.replace(binding, segments=(Segment(SegmentKind.LITERAL, "a/b"),))
    with pytest.raises(InvalidBindingError) as caught:
        Router([bad])
    assert str(caught.value) == (
        "GET /v1/a test.v1.Service/M: literal segment 0 'a/b' is not a non-empty path segment "
        "with valid percent-escapes"
    )


def test_router_refuses_variable_outside_segments() -> None:
    binding = make_binding("GET /v1/{id}")
    bad = dataclasses.replace(binding, segments=binding.segments[:1])
    with pytest.raises(InvalidBindingError) as caught:
        Router([bad])
    assert (
        str(caught.value)
        == "GET /v1/{id} test.v1.Service/M: variable id spans segments [1, 2) of 1"
    )


def test_empty_router_finds_nothing() -> None:
    with pytest.raises(RpcError) as caught:
        Router([]).match("GET", "/")
    assert (caught.value.http_status, caught.value.message) == (
        404,
        "no route matches the path '/'",
    )


def test_route_match_is_frozen() -> None:
    found = build(("GET /v1/{id}",)).match("GET", "/v1/a")
    with pytest.raises(AttributeError):
        found.binding = found.binding  # type: ignore[misc]
