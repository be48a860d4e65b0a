"""Match an HTTP method and a raw URL path to one Binding of a route table (sans-IO).

`Router(bindings)` compiles every binding into one segment trie, once: a node per template
position, with a dict of literal children, one `*` child, one `**` child, and leaves keyed by
custom verb, then HTTP method. `Router.match(http_method, raw_path)` splits the path on `/`
and walks the trie: no regex, and nothing allocated but the split path, a list of indexes and
the captured values. Its cost depends on the path, not on how many routes the table holds.

Matching (docs/http-transcoding.md §2):

- Specificity wins, never declaration order: at each URL segment a literal beats `*`, which
  beats `**`; a `**` first tries to take as few segments as possible, and a route that ends
  where the path ends beats a `**` that would match nothing. The walk backtracks when a more
  specific branch fails later. The HTTP method takes part in the walk: the most specific route
  *for this method* wins (a binding whose method is `*` takes any method, after an exact one).
- `*` never matches an empty segment; `**` matches zero or more segments and may be followed by
  more template segments (`/v1/{parent=projects/*/documents/**}/{collection_id}`).
- Custom verbs: the text after the last `:` of the last segment is a verb only when some route
  of the table declares that verb, and then only if that interpretation matches; otherwise the
  whole segment is matched (`/person/jason:other` binds `id = "jason:other"` for
  `/person/{id}`). An encoded colon (`%3A`) never starts a verb, and a verb needs a non-empty
  segment before its colon (`/v1/:cancel` matches nothing).
- Trailing slashes are ignored, as Envoy's transcoder does: `/v1/shelves/` is `/v1/shelves`,
  and `/` or `//` is the root. An empty segment anywhere else (`/v1//shelves`) matches nothing.
- `HEAD` falls back to the `GET` route when no route takes `HEAD` (nor `*`); `Allow` lists
  `HEAD` whenever it lists `GET`. Methods compare exactly (they are case-sensitive tokens).
- Failures raise RpcError: NOT_FOUND (404) when no route has this path; UNIMPLEMENTED (405,
  `Allow: GET, POST` with every method some route would take) when the path is known but not
  the method; INVALID_ARGUMENT (400) for a malformed `%` escape anywhere in the path (checked
  before routing) or a captured value whose decoded bytes are not UTF-8.

Percent-encoding:

- Literal segments and verbs compare after RFC 3986 §6.2.2.1-2 normalization of both the
  template and the URL: escapes of unreserved characters are decoded (`%41` is `A`, `%7e` is
  `~`) and the hex digits of every other escape are upper-cased (`%2f` is `%2F`). So a literal
  `a%2Fb` matches the URL segment `a%2fb` but never the two segments `a/b`.
- Captured values are decoded as google/api/http.proto (HttpRule, "Path template syntax")
  says: a single-segment variable (`{id}`, `{id=*}`) fully (`%2F` becomes `/`); a multi-segment
  one (`{name=shelves/*}`, `{x=**}`) keeps the escapes of RFC 6570 §2.2 reserved characters
  `!#$&'()*+,/:;=?@[]` as they were (`y%2Fz%3Aw%20v` captures `y%2Fz%3Aw v`); with the
  binding's `fully_decode_reserved_expansion` (a field of google.api.Http) a multi-segment
  variable is decoded fully except `%2F`/`%2f`. `+` is a literal plus (RFC 3986 gives it no
  meaning in a path; only form-encoded queries read it as a space).
"""

from __future__ import annotations

import string
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.specs import Binding, FieldPath, SegmentKind
from protoc_gen_restmon.runtime.status import Code, RpcError

OnDuplicate = Literal["error", "skip"]

_UNBOUNDED = sys.maxsize
# RFC 3986 §2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# RFC 6570 §2.2: reserved = gen-delims / sub-delims, as the byte values whose escapes are kept.
_RESERVED = frozenset(b":/?#[]@!$&'()*+,;=")
_SLASH = frozenset(b"/")
_NOTHING: frozenset[int] = frozenset()
# Every two-character hex pair, in any case, to its byte value: "2f" and "2F" -> 0x2F.
_HEX_BYTE = {a + b: int(a + b, 16) for a in string.hexdigits for b in string.hexdigits}


class DuplicateRouteError(ConfigError):
    """Two bindings with the same HTTP method, custom verb and path shape (names ignored)."""

    def __init__(self, first: Binding, second: Binding) -> None:
        super().__init__(
            f"duplicate route: {second} has the same HTTP method, custom verb and path shape "
            f"as {first}"
        )
        self.first = first
        self.second = second


class InvalidBindingError(ValueError):
    """A Binding the router cannot compile (generated code never holds one)."""


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The binding a request matched and its path variables, percent-decoded, in template order."""

    binding: Binding
    params: tuple[tuple[FieldPath, str], ...]


@dataclass(frozen=True, slots=True)
class _Capture:
    """A variable: URL segments matched by template positions [start, end), and how to decode."""

    field: FieldPath
    start: int
    end: int
    keep: frozenset[int]  # bytes whose escapes stay encoded in the captured value


@dataclass(frozen=True, slots=True)
class _Route:
    binding: Binding
    captures: tuple[_Capture, ...]


class _Node:
    """A trie node: the template positions matched so far are the path from the root."""

    __slots__ = ("deep", "leaves", "literals", "max_rest", "min_rest", "wildcard")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}  # normalized literal -> child
        self.wildcard: _Node | None = None
        self.deep: _Node | None = None
        self.leaves: dict[str, dict[str, _Route]] = {}  # verb -> HTTP method -> route
        # How many more URL segments a route below can take: bounds what a `**` may take.
        self.min_rest = 0
        self.max_rest = 0


class Router:
    """The route table of a gateway: every binding of every loaded package, matched together.

    `on_duplicate="error"` (the default) raises DuplicateRouteError for a second binding with
    the same method, verb and shape; `"skip"` keeps the first and records the pair, as
    (kept, skipped), in `duplicates`. `bindings` holds the bindings kept, in the given order.
    """

    def __init__(self, bindings: Iterable[Binding], *, on_duplicate: OnDuplicate = "error") -> None:
        if on_duplicate not in ("error", "skip"):
            raise ConfigError(f"on_duplicate must be 'error' or 'skip', not {on_duplicate!r}")
        self._root = _Node()
        kept: list[Binding] = []
        duplicates: list[tuple[Binding, Binding]] = []
        verbs: set[str] = set()
        depth = 0
        for binding in bindings:
            route = _compile_route(binding)
            node = self._root
            for segment in binding.segments:
                node = _child(node, segment.kind, segment.value)
            verb = normalize_escapes(binding.verb)
            methods = node.leaves.setdefault(verb, {})
            first = methods.get(binding.http_method)
            if first is not None:
                if on_duplicate == "error":
                    raise DuplicateRouteError(first.binding, binding)
                duplicates.append((first.binding, binding))
                continue
            methods[binding.http_method] = route
            kept.append(binding)
            if verb:
                verbs.add(verb)
            depth = max(depth, len(binding.segments))
        _measure(self._root)
        self.bindings: tuple[Binding, ...] = tuple(kept)
        self.duplicates: tuple[tuple[Binding, Binding], ...] = tuple(duplicates)
        self._verbs = frozenset(verbs)
        self._marks = depth + 1

    def match(self, http_method: str, raw_path: str) -> RouteMatch:
        """The most specific binding for this method and path, with its decoded variables.

        `raw_path` is the path as sent, not percent-decoded and without the query string: ASGI
        `raw_path` decoded as latin-1, one character per byte (as PEP 3333 does), so that raw
        UTF-8 bytes and `%XX` escapes decode alike. Raises RpcError (404, 405 or 400).

        For `GET /v1/shelves/{shelf}`, `match("GET", "/v1/shelves/s%2F1").params` is
        `((FieldPath(("shelf",), ("shelf",)), "s/1"),)`.
        """
        parts = raw_path.split("/")
        if parts[0]:
            raise _not_found(raw_path, "it does not start with '/'")
        end = len(parts)
        while end > 1 and not parts[end - 1]:
            end -= 1
        if parts.count("") > 1 + len(parts) - end:
            raise _not_found(raw_path, "it has an empty segment")
        keys = parts
        if "%" in raw_path:
            _check_escapes(raw_path)
            keys = [normalize_escapes(part) for part in parts]
        verbal = self._split_verb(parts, keys, end) if ":" in parts[end - 1] else None
        marks = [0] * self._marks
        if verbal is None and http_method != "HEAD":  # the common case, spelled out
            route = _descend(self._root, keys, end, "", http_method, marks) or _walk(
                self._root, keys, 1, end, "", http_method, marks, 0
            )
            if route is not None:
                return RouteMatch(route.binding, _params(route, parts, marks))
            raise self._no_match(http_method, raw_path, keys, end, verbal)
        for method in (http_method, "GET") if http_method == "HEAD" else (http_method,):
            if verbal is not None:
                route = _find(self._root, verbal[1], end, verbal[2], method, marks)
                if route is not None:
                    return RouteMatch(route.binding, _params(route, verbal[0], marks))
            route = _find(self._root, keys, end, "", method, marks)
            if route is not None:
                return RouteMatch(route.binding, _params(route, parts, marks))
        raise self._no_match(http_method, raw_path, keys, end, verbal)

    def _split_verb(
        self, parts: list[str], keys: list[str], end: int
    ) -> tuple[list[str], list[str], str] | None:
        """(parts, keys, verb) with the verb cut off the last segment, if it is a known verb."""
        if not self._verbs or end == 1:
            return None
        last = keys[end - 1]
        colon = last.rfind(":")
        if colon <= 0 or last[colon + 1 :] not in self._verbs:
            return None
        raw = parts[end - 1]
        verbal_parts = parts[:end]
        verbal_parts[-1] = raw[: raw.rfind(":")]
        if keys is parts:
            return verbal_parts, verbal_parts, last[colon + 1 :]
        verbal_keys = keys[:end]
        verbal_keys[-1] = last[:colon]
        return verbal_parts, verbal_keys, last[colon + 1 :]

    def _no_match(
        self,
        http_method: str,
        raw_path: str,
        keys: list[str],
        end: int,
        verbal: tuple[list[str], list[str], str] | None,
    ) -> RpcError:
        allowed: set[str] = set()
        if verbal is not None:
            _collect(self._root, verbal[1], 1, end, verbal[2], allowed)
        _collect(self._root, keys, 1, end, "", allowed)
        if not allowed:
            return _not_found(raw_path, "")
        if "GET" in allowed:
            allowed.add("HEAD")
        listed = ", ".join(sorted(allowed))
        return RpcError(
            Code.UNIMPLEMENTED,
            f"method {http_method} is not allowed for the path {raw_path!r} (allowed: {listed})",
            http_status=405,
            headers=(("allow", listed),),
        )


def _find(
    root: _Node, keys: list[str], end: int, verb: str, method: str, marks: list[int]
) -> _Route | None:
    return _descend(root, keys, end, verb, method, marks) or _walk(
        root, keys, 1, end, verb, method, marks, 0
    )


def _descend(
    node: _Node, keys: list[str], end: int, verb: str, method: str, marks: list[int]
) -> _Route | None:
    """_walk's first try, as a loop: a literal child if one matches, else the `*` child.

    _walk tries that path before any other, so when it reaches a route, that is _walk's answer
    too; it does for most requests. Otherwise None, and _walk decides, backtracking as needed.
    """
    depth = 0
    for i in range(1, end):
        marks[depth] = i
        child = node.literals.get(keys[i]) or node.wildcard
        if child is None:
            return None
        node = child
        depth += 1
    marks[depth] = end
    methods = node.leaves.get(verb)
    if methods is None:
        return None
    return methods.get(method) or methods.get("*")


def _walk(
    node: _Node,
    keys: list[str],
    i: int,
    end: int,
    verb: str,
    method: str,
    marks: list[int],
    depth: int,
) -> _Route | None:
    """Depth-first, most specific branch first; marks[d] = URL index where position d starts.

    min_rest/max_rest bound only the `**` loop: checking them at every node costs more than it
    saves on the paths that match.
    """
    rest = end - i
    marks[depth] = i
    if rest:
        child = node.literals.get(keys[i])
        if child is not None:
            found = _walk(child, keys, i + 1, end, verb, method, marks, depth + 1)
            if found is not None:
                return found
        child = node.wildcard
        if child is not None:
            found = _walk(child, keys, i + 1, end, verb, method, marks, depth + 1)
            if found is not None:
                return found
    else:
        methods = node.leaves.get(verb)
        if methods is not None:
            route = methods.get(method) or methods.get("*")
            if route is not None:
                return route
    deep = node.deep
    if deep is not None:
        for taken in range(max(0, rest - deep.max_rest), rest - deep.min_rest + 1):
            found = _walk(deep, keys, i + taken, end, verb, method, marks, depth + 1)
            if found is not None:
                return found
    return None


def _collect(node: _Node, keys: list[str], i: int, end: int, verb: str, out: set[str]) -> None:
    """Every HTTP method of every route whose path matches (the slow path, for 405)."""
    rest = end - i
    if rest < node.min_rest or rest > node.max_rest:
        return
    if rest:
        child = node.literals.get(keys[i])
        if child is not None:
            _collect(child, keys, i + 1, end, verb, out)
        if node.wildcard is not None:
            _collect(node.wildcard, keys, i + 1, end, verb, out)
    else:
        out.update(node.leaves.get(verb, ()))
    deep = node.deep
    if deep is not None:
        for taken in range(max(0, rest - deep.max_rest), rest - deep.min_rest + 1):
            _collect(deep, keys, i + taken, end, verb, out)


def _params(route: _Route, parts: list[str], marks: list[int]) -> tuple[tuple[FieldPath, str], ...]:
    if not route.captures:
        return ()
    params = []
    for capture in route.captures:
        first, stop = marks[capture.start], marks[capture.end]
        raw = parts[first] if stop == first + 1 else "/".join(parts[first:stop])
        plain = raw.isascii() and "%" not in raw
        params.append((capture.field, raw if plain else _decode(raw, capture)))
    return tuple(params)


def _decode(raw: str, capture: _Capture) -> str:
    """Percent-decode `raw` except the escapes of `capture.keep`; escapes were checked already.

    Characters outside escapes are bytes (latin-1), as in the raw path; the bytes must be UTF-8.
    """
    pieces = raw.split("%")
    try:
        out = bytearray(pieces[0], "latin-1")
        for piece in pieces[1:]:
            byte = _HEX_BYTE[piece[:2]]
            if byte in capture.keep:
                out += b"%"
                out += piece.encode("latin-1")
            else:
                out.append(byte)
                out += piece[2:].encode("latin-1")
        return out.decode("utf-8")
    except UnicodeEncodeError:
        why = "holds a character that is not a byte (pass the raw path decoded as latin-1)"
    except UnicodeDecodeError:
        why = "does not percent-decode to UTF-8"
    raise RpcError(
        Code.INVALID_ARGUMENT, f"path variable {capture.field}: {raw!r} {why}", http_status=400
    )


def _check_escapes(raw_path: str) -> None:
    """RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG; anything else after a `%` is a 400."""
    offset = raw_path.find("%")
    while offset >= 0:
        if raw_path[offset + 1 : offset + 3] not in _HEX_BYTE:
            raise RpcError(
                Code.INVALID_ARGUMENT,
                f"malformed percent-escape {raw_path[offset : offset + 3]!r} at offset {offset} "
                f"of the path {raw_path!r}",
                http_status=400,
            )
        offset = raw_path.find("%", offset + 3)


def normalize_escapes(text: str) -> str:
    """RFC 3986 §6.2.2.1-2: `%7e` -> `~`, `%41` -> `A`, `%2f` -> `%2F`; the rest unchanged."""
    if "%" not in text:
        return text
    pieces = text.split("%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        char = chr(_HEX_BYTE[piece[:2]])
        out.append(char if char in _UNRESERVED else "%" + piece[:2].upper())
        out.append(piece[2:])
    return "".join(out)


def _not_found(raw_path: str, why: str) -> RpcError:
    detail = f" ({why})" if why else ""
    return RpcError(
        Code.NOT_FOUND, f"no route matches the path {raw_path!r}{detail}", http_status=404
    )


def _child(node: _Node, kind: SegmentKind, value: str) -> _Node:
    if kind is SegmentKind.LITERAL:
        key = normalize_escapes(value)
        child = node.literals.get(key)
        if child is None:
            child = node.literals[key] = _Node()
        return child
    if kind is SegmentKind.WILDCARD:
        if node.wildcard is None:
            node.wildcard = _Node()
        return node.wildcard
    if node.deep is None:
        node.deep = _Node()
    return node.deep


def _measure(node: _Node) -> None:
    """Set min_rest/max_rest of every node, children first."""
    low, high = (0, 0) if node.leaves else (_UNBOUNDED, 0)
    for child in (*node.literals.values(), node.wildcard):
        if child is not None:
            _measure(child)
            low = min(low, child.min_rest + 1)
            high = max(high, min(child.max_rest + 1, _UNBOUNDED))
    if node.deep is not None:
        _measure(node.deep)
        low, high = min(low, node.deep.min_rest), _UNBOUNDED
    node.min_rest, node.max_rest = low, high


def _compile_route(binding: Binding) -> _Route:
    """Check what generated code guarantees anyway, and precompute each variable's decoding."""
    for position, segment in enumerate(binding.segments):
        if segment.kind is SegmentKind.LITERAL and not _is_segment_text(segment.value):
            raise InvalidBindingError(
                f"{binding}: literal segment {position} {segment.value!r} is not a non-empty "
                "path segment with valid percent-escapes"
            )
    if binding.verb and (":" in binding.verb or not _is_segment_text(binding.verb)):
        raise InvalidBindingError(f"{binding}: invalid custom verb {binding.verb!r}")
    if not binding.http_method:
        raise InvalidBindingError(f"{binding}: empty HTTP method")
    captures = []
    for variable in binding.variables:
        if not 0 <= variable.start < variable.end <= len(binding.segments):
            raise InvalidBindingError(
                f"{binding}: variable {variable.field} spans segments "
                f"[{variable.start}, {variable.end}) of {len(binding.segments)}"
            )
        if not variable.reserved_expansion:
            keep = _NOTHING
        elif binding.fully_decode_reserved_expansion:
            keep = _SLASH
        else:
            keep = _RESERVED
        captures.append(_Capture(variable.field, variable.start, variable.end, keep))
    return _Route(binding, tuple(captures))


def _is_segment_text(text: str) -> bool:
    if not text or "/" in text:
        return False
    return all(piece[:2] in _HEX_BYTE for piece in text.split("%")[1:])
