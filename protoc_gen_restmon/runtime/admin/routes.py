"""The admin API's path table: literal and `{param}` segments, matched below the mount point."""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from protoc_gen_restmon.runtime.admin.queries import Params
from protoc_gen_restmon.runtime.gateway.http import Headers, Scope, raw_path
from protoc_gen_restmon.runtime.status import Code, RpcError

__all__ = ["Reply", "Request", "Route", "match_route", "path_segments"]


@dataclass(frozen=True, slots=True)
class Request:
    """What a handler is given: the path parameter (if any), the query and the raw body."""

    param: str
    params: Params
    body: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: Headers = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Route:
    """`pattern` is a path like `/api/grpc/api-keys/{id}/`; `{…}` matches one segment."""

    method: str
    pattern: str
    handler: Handler
    segments: tuple[str, ...]

    @classmethod
    def of(cls, method: str, pattern: str, handler: Handler) -> Route:
        return cls(method, pattern, handler, tuple(pattern.strip("/").split("/")))

    def matches(self, segments: Sequence[str]) -> str | None:
        """The parameter's value ("" without one) when `segments` fit, else None."""
        mine = self.segments
        if len(mine) != len(segments):
            return None
        param = ""
        for pattern, segment in zip(mine, segments, strict=True):
            if pattern.startswith("{"):
                param = segment
            elif pattern != segment:
                return None
        return param


def path_segments(scope: Scope) -> list[str] | None:
    """The decoded segments of the path below the mount point, one trailing `/` ignored; None
    for a path no route can match (empty segments, bad percent-encoding)."""
    path = raw_path(scope)
    if path.endswith("/"):
        path = path[:-1]
    raw = path.split("/")[1:]
    try:
        segments = [urllib.parse.unquote(s, errors="strict") for s in raw]
    except UnicodeDecodeError:
        return None
    return segments if all(segments) else None


def match_route(routes: Sequence[Route], method: str, scope: Scope) -> tuple[Route, str]:
    """The route for this request and its parameter; a literal segment wins over `{param}`
    (`/api-keys/stats/` is not key "stats"). 404 for no path, 405 (with Allow) for no method."""
    segments = path_segments(scope)
    found = [] if segments is None else _candidates(routes, segments)
    if not found:
        raise RpcError(Code.NOT_FOUND, f"no admin endpoint at {scope['path']}")
    pattern = found[0][0].pattern
    same = [(route, param) for route, param in found if route.pattern == pattern]
    for route, param in same:
        if route.method == method:
            return route, param
    allow = ", ".join(sorted({route.method for route, _ in same}))
    raise RpcError(
        Code.UNIMPLEMENTED,
        f"{method} is not allowed on {scope['path']} (allowed: {allow})",
        http_status=405,
        headers=(("allow", allow),),
    )


def _candidates(routes: Sequence[Route], segments: Sequence[str]) -> list[tuple[Route, str]]:
    found = [(r, p) for r in routes if (p := r.matches(segments)) is not None]
    # Fewer parameters first: literal routes shadow parameter routes of the same length.
    return sorted(found, key=lambda item: sum(s.startswith("{") for s in item[0].segments))
