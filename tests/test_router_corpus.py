"""Every googleapis binding in one Router: a URL made for each binding routes back to it.

A URL may instead reach the duplicate that was kept in its place (googleapis binds some shapes
twice), or a route that is more specific for that very URL (`documents/*/**` takes what
`documents/**` would, `cryptoKeys/*` takes `cryptoKeys/protectedResourcesSummary`); the test
checks that claim with the brute-force ranking of tests/support/router_tools.py and reports the
counts.
"""

from __future__ import annotations

from collections import Counter

import pytest

from protoc_gen_restmon.runtime.router import Router
from protoc_gen_restmon.runtime.specs import Binding, SegmentKind
from tests.support.router_tools import (
    CORPUS,
    generate_corpus_routes,
    interpretations,
    load_route_modules,
    normalize,
    rank,
    synthesize,
)

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.slow,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="googleapis corpus absent: run `make corpus`"),
]


@pytest.fixture(scope="session")
def corpus_bindings(tmp_path_factory: pytest.TempPathFactory) -> list[Binding]:
    out = tmp_path_factory.mktemp("router_corpus")
    generate_corpus_routes(out)
    return load_route_modules(out)


def _more_specific(found: Binding, meant: Binding, path: str, verbs: set[str]) -> bool:
    keys, verb = interpretations(path, verbs)[0]
    theirs, ours = rank(found, keys, verb), rank(meant, keys, verb)
    return theirs is not None and ours is not None and theirs < ours


def _urls_to_make(bindings: list[Binding]) -> list[tuple[Binding, int]]:
    """Each binding once, and bindings with a `**` twice: it takes one segment, then two."""
    deep = SegmentKind.DEEP_WILDCARD
    return [
        (binding, taken)
        for binding in bindings
        for taken in ((1, 2) if any(s.kind is deep for s in binding.segments) else (1,))
    ]


def test_every_corpus_binding_routes_back(corpus_bindings: list[Binding]) -> None:
    router = Router(corpus_bindings, on_duplicate="skip")
    kept_for = {id(skipped): kept for kept, skipped in router.duplicates}
    verbs = {normalize(b.verb) for b in router.bindings if b.verb}
    outcomes: Counter[str] = Counter()
    examples: list[str] = []
    for binding, deep_segments in _urls_to_make(corpus_bindings):
        path, params = synthesize(binding, deep_segments)
        found = router.match(binding.http_method, path).binding
        meant = kept_for.get(id(binding), binding)
        if found is binding:
            outcomes["itself"] += 1
            assert {str(f): v for f, v in router.match(found.http_method, path).params} == params
        elif found is meant:
            outcomes["the duplicate kept in its place"] += 1
        else:
            assert _more_specific(found, meant, path, verbs), f"{path}: {found}, not {meant}"
            outcomes["a more specific route"] += 1
            examples.append(f"  {binding.http_method} {path} -> {found.template}")
    print(
        f"\n{len(corpus_bindings)} bindings, {len(router.duplicates)} duplicates skipped; "
        f"URLs (a `**` taking 1, then 2 segments) routed to: {dict(outcomes)}",
        *examples[:10],
        sep="\n",
    )
    assert outcomes["itself"] + outcomes["the duplicate kept in its place"] > 0.97 * sum(
        outcomes.values()
    )
    assert len(corpus_bindings) > 13_000


def test_corpus_router_refuses_duplicates_by_default(corpus_bindings: list[Binding]) -> None:
    with pytest.raises(ValueError, match=r"^duplicate route: .+ has the same HTTP method"):
        Router(corpus_bindings)
