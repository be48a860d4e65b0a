"""Router: docs/http-transcoding.md §2, one named row per rule (routes, request, outcome)."""

from __future__ import annotations

import pytest

from protoc_gen_restmon.runtime.router import RouteMatch, Router
from protoc_gen_restmon.runtime.status import Code, RpcError
from tests.support.router_tools import make_binding


def build(routes: tuple[str, ...]) -> Router:
    return Router(make_binding(spec, f"M{i}") for i, spec in enumerate(routes))


def match(routes: tuple[str, ...], request: str) -> RouteMatch:
    http_method, path = request.split(" ")
    return build(routes).match(http_method, path)


SHELF = ("GET /v1/{name=shelves/*}", "GET /v1/shelves/special")
BACKTRACK = ("GET /v1/{a=shelves/*}/books", "GET /v1/{b=**}/x")
FIRESTORE = ("GET /v1/{parent=projects/*/databases/*/documents/**}/{collection_id}",)
KMS = ("GET /v1/{name=keyRings/*/cryptoKeys/**}/protectedResourcesSummary",)
VERBS = ("GET /person/{id}", "POST /person/{id}:other", "POST /v1/{name=books/*}:cancel")
SINGLE = ("GET /v1/shelves/{shelf}",)
MULTI = ("GET /v1/{name=shelves/*}",)
DEEP = ("GET /v1/{path=**}",)
FULLY = ("GET /v1/{path=**} fully_decode",)
RESERVED = "%21%23%24%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D"

# (routes, request, the route it must pick, its params by field path)
MATCHES = [
    # Specificity, never declaration order.
    pytest.param(SHELF, "GET /v1/shelves/special", SHELF[1], {}, id="literal-beats-wildcard"),
    pytest.param(
        SHELF[::-1], "GET /v1/shelves/special", SHELF[1], {}, id="literal-beats-wildcard-reversed"
    ),
    pytest.param(
        SHELF, "GET /v1/shelves/other", SHELF[0], {"name": "shelves/other"}, id="wildcard-fallback"
    ),
    pytest.param(
        ("GET /v1/{x=**}", "GET /v1/{id}"),
        "GET /v1/a",
        "GET /v1/{id}",
        {"id": "a"},
        id="wildcard-beats-deep",
    ),
    pytest.param(
        BACKTRACK,
        "GET /v1/shelves/s1/x",
        BACKTRACK[1],
        {"b": "shelves/s1"},
        id="backtrack-from-literal-branch-to-deep",
    ),
    pytest.param(
        BACKTRACK,
        "GET /v1/shelves/s1/books",
        BACKTRACK[0],
        {"a": "shelves/s1"},
        id="literal-branch-when-it-completes",
    ),
    pytest.param(
        ("GET /v1/{a}/x", "GET /v1/{b=**}"),
        "GET /v1/q/y",
        "GET /v1/{b=**}",
        {"b": "q/y"},
        id="backtrack-from-wildcard-branch-to-deep",
    ),
    pytest.param(
        ("GET /a/{y=**}", "GET /a/{x=**}/b"),
        "GET /a/b",
        "GET /a/{x=**}/b",
        {"x": ""},
        id="deep-takes-as-few-segments-as-it-can",
    ),
    pytest.param(
        ("GET /a/{x=**}", "GET /a"), "GET /a", "GET /a", {}, id="route-ending-here-beats-empty-deep"
    ),
    # `**`: zero, many, followed by more segments.
    pytest.param(DEEP, "GET /v1", DEEP[0], {"path": ""}, id="deep-zero-segments"),
    pytest.param(DEEP, "GET /v1/a/b/c", DEEP[0], {"path": "a/b/c"}, id="deep-many-segments"),
    pytest.param(
        FIRESTORE,
        "GET /v1/projects/p/databases/d/documents/a/b/c",
        FIRESTORE[0],
        {"parent": "projects/p/databases/d/documents/a/b", "collection_id": "c"},
        id="deep-followed-by-variable",
    ),
    pytest.param(
        FIRESTORE,
        "GET /v1/projects/p/databases/d/documents/c",
        FIRESTORE[0],
        {"parent": "projects/p/databases/d/documents", "collection_id": "c"},
        id="deep-followed-by-variable-deep-empty",
    ),
    pytest.param(
        KMS,
        "GET /v1/keyRings/k/cryptoKeys/c/v/protectedResourcesSummary",
        KMS[0],
        {"name": "keyRings/k/cryptoKeys/c/v"},
        id="deep-followed-by-literal",
    ),
    pytest.param(
        ("GET /{a=**/x/**}/{b}",),
        "GET /p/x/q/x/r/s",
        "GET /{a=**/x/**}/{b}",
        {"a": "p/x/q/x/r", "b": "s"},
        id="two-deep-wildcards",
    ),
    # Custom verbs.
    pytest.param(
        ("GET /person/{id}",),
        "GET /person/jason:other",
        "GET /person/{id}",
        {"id": "jason:other"},
        id="unregistered-verb-stays-in-segment",
    ),
    pytest.param(
        VERBS, "POST /person/jason:other", VERBS[1], {"id": "jason"}, id="registered-verb"
    ),
    pytest.param(
        VERBS,
        "GET /person/jason:other",
        VERBS[0],
        {"id": "jason:other"},
        id="registered-verb-without-route-here-stays-in-segment",
    ),
    pytest.param(
        VERBS,
        "POST /v1/books/b:1:cancel",
        VERBS[2],
        {"name": "books/b:1"},
        id="verb-after-last-colon",
    ),
    pytest.param(
        VERBS,
        "GET /person/jason%3Aother",
        VERBS[0],
        {"id": "jason:other"},
        id="encoded-colon-starts-no-verb",
    ),
    pytest.param(
        ("POST /v1/books:batchGet", "POST /v1/{id}"),
        "POST /v1/books:batchGet",
        "POST /v1/books:batchGet",
        {},
        id="verb-after-literal",
    ),
    pytest.param(
        ("POST /v1/books:%62atch",),
        "POST /v1/books:batch",
        "POST /v1/books:%62atch",
        {},
        id="verb-compared-normalized",
    ),
    # Decoding captured values.
    pytest.param(SINGLE, "GET /v1/shelves/a%2Fb%20c", SINGLE[0], {"shelf": "a/b c"}, id="single"),
    pytest.param(
        SINGLE,
        f"GET /v1/shelves/{RESERVED}",
        SINGLE[0],
        {"shelf": "!#$&'()*+,/:;=?@[]"},
        id="single-decodes-reserved",
    ),
    pytest.param(
        MULTI,
        "GET /v1/shelves/y%2Fz%3Aw%20v",
        MULTI[0],
        {"name": "shelves/y%2Fz%3Aw v"},
        id="multi-keeps-reserved-escapes",
    ),
    pytest.param(
        DEEP,
        f"GET /v1/{RESERVED}/%41%7e",
        DEEP[0],
        {"path": f"{RESERVED}/A~"},
        id="multi-keeps-every-reserved-escape",
    ),
    pytest.param(
        DEEP, "GET /v1/a%2fb%3a", DEEP[0], {"path": "a%2fb%3a"}, id="multi-keeps-escape-case"
    ),
    pytest.param(
        FULLY,
        f"GET /v1/a%2fb/{RESERVED}",
        FULLY[0],
        {"path": "a%2fb/!#$&'()*+,%2F:;=?@[]"},
        id="fully-decode-keeps-only-slash",
    ),
    pytest.param(SINGLE, "GET /v1/shelves/%C3%A9t%C3%A9", SINGLE[0], {"shelf": "été"}, id="utf8"),
    pytest.param(DEEP, "GET /v1/%E2%82%AC/x", DEEP[0], {"path": "€/x"}, id="utf8-multi"),
    pytest.param(
        SINGLE,
        "GET /v1/shelves/\u00e2\u0082\u00ac%20",
        SINGLE[0],
        {"shelf": "€ "},
        id="raw-utf8-bytes-as-latin1",
    ),
    pytest.param(SINGLE, "GET /v1/shelves/a+b", SINGLE[0], {"shelf": "a+b"}, id="plus-is-plus"),
    pytest.param(SINGLE, "GET /v1/shelves/%2B", SINGLE[0], {"shelf": "+"}, id="escaped-plus"),
    pytest.param(DEEP, "GET /v1/a+b%2B", DEEP[0], {"path": "a+b%2B"}, id="multi-plus"),
    # Literals compare after RFC 3986 normalization.
    pytest.param(
        ("GET /v1/%7Euser",), "GET /v1/~user", "GET /v1/%7Euser", {}, id="literal-escape-vs-char"
    ),
    pytest.param(
        ("GET /v1/~user",), "GET /v1/%7euser", "GET /v1/~user", {}, id="literal-char-vs-escape"
    ),
    pytest.param(("GET /v1/a%2Fb",), "GET /v1/a%2fb", "GET /v1/a%2Fb", {}, id="literal-hex-case"),
    # Trailing slashes are ignored.
    pytest.param(
        ("GET /v1/shelves",), "GET /v1/shelves/", "GET /v1/shelves", {}, id="trailing-slash"
    ),
    pytest.param(DEEP, "GET /v1/a//", DEEP[0], {"path": "a"}, id="trailing-slashes-deep"),
    pytest.param(("GET /",), "GET /", "GET /", {}, id="root"),
    pytest.param(("GET /",), "GET //", "GET /", {}, id="root-double-slash"),
    # HTTP methods.
    pytest.param(("* /v1/{id}",), "PURGE /v1/a", "* /v1/{id}", {"id": "a"}, id="any-method"),
    pytest.param(
        ("* /v1/{id}", "GET /v1/{id}"),
        "GET /v1/a",
        "GET /v1/{id}",
        {"id": "a"},
        id="exact-method-before-any",
    ),
    pytest.param(
        ("GET /v1/{id}", "* /v1/{id}"),
        "DELETE /v1/a",
        "* /v1/{id}",
        {"id": "a"},
        id="any-method-when-no-exact",
    ),
    pytest.param(
        ("GET /v1/{x=**}", "* /v1/shelves/{id}"),
        "GET /v1/shelves/a",
        "* /v1/shelves/{id}",
        {"id": "a"},
        id="path-specificity-before-method-exactness",
    ),
    pytest.param(
        ("GET /v1/shelves/{id}", "POST /v1/{x=**}"),
        "POST /v1/shelves/a",
        "POST /v1/{x=**}",
        {"x": "shelves/a"},
        id="most-specific-route-of-this-method",
    ),
    pytest.param(
        ("GET /v1/{id}",), "HEAD /v1/a", "GET /v1/{id}", {"id": "a"}, id="head-falls-back-to-get"
    ),
    pytest.param(
        ("GET /v1/{id}", "HEAD /v1/{x=**}"),
        "HEAD /v1/a",
        "HEAD /v1/{x=**}",
        {"x": "a"},
        id="head-route-before-get-route",
    ),
    pytest.param(
        ("GET /v1/{id}", "* /v1/{x=**}"),
        "HEAD /v1/a",
        "* /v1/{x=**}",
        {"x": "a"},
        id="any-method-route-takes-head-before-get",
    ),
]


@pytest.mark.parametrize(("routes", "request_line", "expected", "params"), MATCHES)
def test_router_match_picks_route_and_decodes_params(
    routes: tuple[str, ...], request_line: str, expected: str, params: dict[str, str]
) -> None:
    found = match(routes, request_line)
    assert f"{found.binding.http_method} {found.binding.template}" == expected.removesuffix(
        " fully_decode"
    )
    assert {str(field): value for field, value in found.params} == params


NOT_FOUND = "no route matches the path"
# (routes, request, code, HTTP status, the exact message, headers)
FAILURES = [
    pytest.param(
        SINGLE,
        "GET /v2/shelves/a",
        Code.NOT_FOUND,
        404,
        f"{NOT_FOUND} '/v2/shelves/a'",
        (),
        id="unknown-path",
    ),
    pytest.param(
        ("GET /v1/{id}/x",),
        "GET /v1//x",
        Code.NOT_FOUND,
        404,
        f"{NOT_FOUND} '/v1//x' (it has an empty segment)",
        (),
        id="wildcard-never-matches-empty",
    ),
    pytest.param(
        ("GET /v1/{x=**}",),
        "GET /v1/a//b",
        Code.NOT_FOUND,
        404,
        f"{NOT_FOUND} '/v1/a//b' (it has an empty segment)",
        (),
        id="deep-never-matches-empty",
    ),
    pytest.param(
        SINGLE,
        "GET /v1/shelves/",
        Code.NOT_FOUND,
        404,
        f"{NOT_FOUND} '/v1/shelves/'",
        (),
        id="trailing-slash-is-no-empty-wildcard",
    ),
    pytest.param(
        ("POST /v1/{id}:cancel",),
        "POST /v1/:cancel",
        Code.NOT_FOUND,
        404,
        f"{NOT_FOUND} '/v1/:cancel'",
        (),
        id="empty-segment-before-verb",
    ),
    pytest.param(
        SINGLE,
        "OPTIONS *",
        Code.NOT_FOUND,
        404,
        f"{NOT_FOUND} '*' (it does not start with '/')",
        (),
        id="asterisk-form",
    ),
    pytest.param(
        ("GET /v1/{id}", "POST /v1/{id}", "DELETE /v1/{x=**}", "PUT /v2/{id}"),
        "PATCH /v1/a",
        Code.UNIMPLEMENTED,
        405,
        "method PATCH is not allowed for the path '/v1/a' (allowed: DELETE, GET, HEAD, POST)",
        (("allow", "DELETE, GET, HEAD, POST"),),
        id="method-not-allowed-lists-every-method",
    ),
    pytest.param(
        ("POST /v1/{id}:cancel", "PUT /v1/{id}"),
        "GET /v1/a:cancel",
        Code.UNIMPLEMENTED,
        405,
        "method GET is not allowed for the path '/v1/a:cancel' (allowed: POST, PUT)",
        (("allow", "POST, PUT"),),
        id="method-not-allowed-both-verb-readings",
    ),
    pytest.param(
        SINGLE,
        "GET /v1/shelves/a%zz",
        Code.INVALID_ARGUMENT,
        400,
        "malformed percent-escape '%zz' at offset 13 of the path '/v1/shelves/a%zz'",
        (),
        id="malformed-escape",
    ),
    pytest.param(
        SINGLE,
        "GET /nowhere/%2",
        Code.INVALID_ARGUMENT,
        400,
        "malformed percent-escape '%2' at offset 9 of the path '/nowhere/%2'",
        (),
        id="truncated-escape-before-routing",
    ),
    pytest.param(
        SINGLE,
        "GET /v1/%/x",
        Code.INVALID_ARGUMENT,
        400,
        "malformed percent-escape '%/x' at offset 4 of the path '/v1/%/x'",
        (),
        id="lone-percent",
    ),
    pytest.param(
        SINGLE,
        "GET /v1/shelves/%FF",
        Code.INVALID_ARGUMENT,
        400,
        "path variable shelf: '%FF' does not percent-decode to UTF-8",
        (),
        id="not-utf8",
    ),
    pytest.param(
        SINGLE,
        "GET /v1/shelves/\u20ac",
        Code.INVALID_ARGUMENT,
        400,
        "path variable shelf: '\u20ac' holds a character that is not a byte (pass the raw path "
        "decoded as latin-1)",
        (),
        id="character-beyond-latin1",
    ),
    pytest.param(
        DEEP,
        "GET /v1/a/%C3",
        Code.INVALID_ARGUMENT,
        400,
        "path variable path: 'a/%C3' does not percent-decode to UTF-8",
        (),
        id="not-utf8-multi",
    ),
]


@pytest.mark.parametrize(
    ("routes", "request_line", "code", "status", "message", "headers"), FAILURES
)
def test_router_match_raises_rpc_error(
    routes: tuple[str, ...],
    request_line: str,
    code: Code,
    status: int,
    message: str,
    headers: tuple[tuple[str, str], ...],
) -> None:
    with pytest.raises(RpcError) as caught:
        match(routes, request_line)
    assert (caught.value.code, caught.value.http_status) == (code, status)
    assert caught.value.message == message
    assert caught.value.headers == headers
