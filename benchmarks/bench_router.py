"""Time Router.match on a small and a googleapis-sized route table, and Starlette's Router.

Tables: every googleapis binding (one Router, duplicates skipped; needs `make corpus`) and
100 of them picked at random (seeded); and a synthetic googleapis-like table at 100 and 13,000
bindings, which needs no corpus. Requests: one URL per binding of the 100-binding table (made
as tests/router_tools.synthesize makes them), matched against both the small and the full
table, so that the ratio shows how match time grows with the table.

Starlette holds the same routes as `Route`s (each `*` a `{p<i>}` parameter, each `**` a
`{p<i>:path}`, the custom verb a literal `:verb`), in binding order. Its matching is timed as
`starlette.routing.Router.app` does it: `route.matches(scope)` over `router.routes` until a
FULL match, remembering the first PARTIAL. Neither side runs an ASGI app.

Each request is timed as the best of 5 repeats of a loop of n calls, with the garbage
collector off (as timeit does), the small and the full table taking turns on each request;
the tables report the median and 90th percentile over the requests. Writes the
"bench_router" section of benchmarks/RESULTS.md.

Usage: python benchmarks/bench_router.py [--routes DIR] [--synthetic-only] [--no-write]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from starlette.routing import Match, Route  # noqa: E402
from starlette.routing import Router as StarletteRouter  # noqa: E402

from benchmarks.results import machine_line, write_section  # noqa: E402
from protoc_gen_restmon.runtime.router import Router  # noqa: E402
from protoc_gen_restmon.runtime.specs import Binding, SegmentKind  # noqa: E402
from tests.support.router_tools import (  # noqa: E402
    CORPUS,
    generate_corpus_routes,
    load_route_modules,
    make_binding,
    synthesize,
)

SMALL = 100
SEED = 20260101
STARLETTE_LARGE_SAMPLE = 100  # requests timed on Starlette's large table (a few ms each)


@dataclass(frozen=True)
class Timing:
    median_us: float
    p90_us: float


@dataclass(frozen=True)
class Row:
    table: str
    routes: int
    restmon: Timing
    starlette: Timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=Path, help="generated corpus route modules (reused)")
    parser.add_argument("--synthetic-only", action="store_true", help="skip the googleapis table")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    intro = machine_line()
    sections = []
    if args.synthetic_only:
        corpus_note = "googleapis table: not run (--synthetic-only)."
    elif not CORPUS.is_dir():
        corpus_note = f"googleapis table: skipped, {CORPUS.relative_to(REPO)} is absent."
    else:
        corpus_note = ""
        sections.append(bench_table("googleapis", corpus_bindings(args.routes)))
    if corpus_note:
        print(corpus_note)
    sections.append(bench_table("synthetic", synthetic_bindings(13_000)))
    body = render(intro, corpus_note, sections)
    print(body)
    if not args.no_write:
        write_section("bench_router", body)
        print("updated benchmarks/RESULTS.md")


def corpus_bindings(routes: Path | None) -> list[Binding]:
    if routes is not None and any(routes.rglob("_restmon_routes.py")):
        return load_route_modules(routes)
    if routes is not None:
        routes.mkdir(parents=True, exist_ok=True)
        print(f"generating googleapis route modules into {routes} …", flush=True)
        generate_corpus_routes(routes)
        return load_route_modules(routes)
    with tempfile.TemporaryDirectory(prefix="bench_router_") as scratch:
        print("generating googleapis route modules (~35 s) …", flush=True)
        generate_corpus_routes(Path(scratch))
        return load_route_modules(Path(scratch))


def synthetic_bindings(count: int) -> list[Binding]:
    """googleapis-like: per resource kind, the standard methods, a custom verb, a `**` getter."""
    shapes = (
        "GET /{v}/{{parent=projects/*/locations/*}}/{r}",
        "POST /{v}/{{parent=projects/*/locations/*}}/{r}",
        "GET /{v}/{{name=projects/*/locations/*/{r}/*}}",
        "PATCH /{v}/{{{r}.name=projects/*/locations/*/{r}/*}}",
        "DELETE /{v}/{{name=projects/*/locations/*/{r}/*}}",
        "POST /{v}/{{name=projects/*/locations/*/{r}/*}}:run{k}",
        "GET /{v}/{{name=projects/*/locations/*/{r}/*/files/**}}",
    )
    specs = []
    for index in range(count):
        kind, shape = divmod(index, len(shapes))
        version = ("v1", "v1beta", "v2alpha")[kind % 3]
        specs.append(shapes[shape].format(v=version, r=f"res{kind}", k=kind % 40))
    return [make_binding(spec, f"M{i}") for i, spec in enumerate(specs)]


def bench_table(name: str, bindings: list[Binding]) -> tuple[str, list[Row], str]:
    big = Router(bindings, on_duplicate="skip")
    kept = list(big.bindings)
    small_bindings = random.Random(SEED).sample(kept, SMALL)
    small = Router(small_bindings)
    requests = [request_for(b) for b in small_bindings]
    print(f"{name}: {len(bindings)} bindings, {len(kept)} routes; timing …", flush=True)
    star_small, star_big = starlette_router(small_bindings), starlette_router(kept)
    sample = requests[:STARLETTE_LARGE_SAMPLE]
    ours_small, ours_big, theirs_small = time_each(
        [(small.match, 200), (big.match, 200), (partial(starlette_match, star_small), 20)],
        requests,
    )
    (theirs_big,) = time_each([(partial(starlette_match, star_big), 1)], sample)
    rows = [
        Row(f"{name}, {SMALL} routes", SMALL, ours_small, theirs_small),
        Row(f"{name}, all routes", len(kept), ours_big, theirs_big),
    ]
    (everything,) = time_each([(big.match, 20)], [request_for(b) for b in kept])
    note = (
        f"{len(bindings):,} bindings, {len(big.duplicates)} duplicates skipped. Over one URL "
        f"for every one of the {len(kept):,} routes, Router.match takes "
        f"{everything.median_us:.2f} µs median, {everything.p90_us:.2f} µs p90."
    )
    return name, rows, note


def request_for(binding: Binding) -> tuple[str, str]:
    return binding.http_method, synthesize(binding)[0]


def starlette_router(bindings: Sequence[Binding]) -> StarletteRouter:
    async def endpoint(request: object) -> None:  # never called
        return None

    routes = [Route(starlette_path(b), endpoint, methods=[b.http_method]) for b in bindings]
    return StarletteRouter(routes=routes)


def starlette_path(binding: Binding) -> str:
    """`/v1/{name=shelves/*}:undelete` -> `/v1/shelves/{p2}:undelete`; `**` -> `{p<i>:path}`."""
    parts = []
    for position, segment in enumerate(binding.segments):
        if segment.kind is SegmentKind.LITERAL:
            parts.append(segment.value)
        elif segment.kind is SegmentKind.WILDCARD:
            parts.append(f"{{p{position}}}")
        else:
            parts.append(f"{{p{position}:path}}")
    verb = f":{binding.verb}" if binding.verb else ""
    return "/" + "/".join(parts) + verb


def starlette_match(router: StarletteRouter, method: str, path: str) -> object:
    """starlette.routing.Router.app's loop, without dispatching to the endpoint."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    partial = None
    for route in router.routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            return child_scope
        if match is Match.PARTIAL and partial is None:
            partial = child_scope
    return partial


def time_each(
    calls: Sequence[tuple[Callable[[str, str], object], int]],
    requests: Sequence[tuple[str, str]],
) -> list[Timing]:
    """Per (call, n): median and p90 over the requests of each one's best of 5 loops of n calls.

    The calls take turns on each request, so that a change in machine load hits them alike.
    """
    times: list[list[float]] = [[] for _ in calls]
    gc.collect()
    gc.disable()
    try:
        for method, path in requests:
            for (call, number), spent in zip(calls, times, strict=True):
                best = float("inf")
                for _ in range(5):
                    start = time.perf_counter_ns()
                    for _ in range(number):
                        call(method, path)
                    best = min(best, (time.perf_counter_ns() - start) / number)
                spent.append(best / 1000)
    finally:
        gc.enable()
    return [_summary(sorted(spent)) for spent in times]


def _summary(times: list[float]) -> Timing:
    return Timing(statistics.median(times), times[int(0.9 * (len(times) - 1))])


def render(intro: str, corpus_note: str, sections: list[tuple[str, list[Row], str]]) -> str:
    lines = [
        "## Router: trie matching vs Starlette's regex routes",
        "",
        "`python benchmarks/bench_router.py`: `Router.match(method, raw_path)` against "
        "`starlette.routing.Router` holding the same routes (its `route.matches` loop, "
        f"no ASGI); one URL per binding of a {SMALL}-binding sample, each timed best of 5.",
        intro,
        "",
        "| table | routes | Router.match median µs | p90 µs | Starlette median µs | "
        "p90 µs | speedup |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, rows, _ in sections:
        for row in rows:
            speedup = row.starlette.median_us / row.restmon.median_us
            lines.append(
                f"| {row.table} | {row.routes:,} | {row.restmon.median_us:.2f} | "
                f"{row.restmon.p90_us:.2f} | {row.starlette.median_us:,.1f} | "
                f"{row.starlette.p90_us:,.1f} | {speedup:,.0f}x |"
            )
    lines.append("")
    for name, rows, note in sections:
        ratio = rows[1].restmon.median_us / rows[0].restmon.median_us
        lines.append(
            f"- {name}: the same {SMALL} URLs take {ratio:.2f}x as long with all "
            f"{rows[1].routes:,} routes loaded as with {SMALL} (flat: the trie walk depends on "
            f"the path, not the table). {note}"
        )
    if corpus_note:
        lines.append(f"- {corpus_note}")
    lines.append(
        f"- Starlette on a full table: {STARLETTE_LARGE_SAMPLE} of the URLs, one call each "
        "(it tries routes in order, so its time grows with the table)."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
