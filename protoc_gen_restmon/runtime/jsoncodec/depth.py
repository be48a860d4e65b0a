"""How deeply JSON text nests, found before any parser recurses into it.

`json.loads` recurses once per array or object level, so a body of ten thousand `[` would end
in a RecursionError (or, in a thread with a small stack, worse). `check_depth` refuses text
nested deeper than a limit by counting brackets first, at C speed: strings are cut out with one
pass of `bytes.translate` keeping quotes and brackets, escapes and bracket-free strings removed
with `bytes.replace`; then, only if the text has more than `limit` opening brackets, passes of
`bytes.replace(b"[]", b"")` peel one level each. No Python-level loop over the text.

    check_depth(b'{"a": [[1]], "s": "[[[["}', 2)   # JsonDepthError: nested deeper than 2

The limit is protobuf's own default (`json_format`'s `max_recursion_depth`): 100.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_DEPTH", "JsonDepthError", "check_depth", "nesting_depth"]

MAX_DEPTH: Final = 100

_NOT_QUOTES_OR_BRACKETS: Final = bytes(set(range(256)) - set(b'"[]{}'))
# Objects and arrays nest alike: `{` and `}` are read as `[` and `]`.
_AS_ARRAYS: Final = bytes.maketrans(b"{}", b"[]")


class JsonDepthError(ValueError):
    """Text whose arrays and objects nest deeper than `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nested deeper than {limit} levels")
        self.limit = limit


def check_depth(data: bytes | str, limit: int = MAX_DEPTH) -> None:
    """Raise JsonDepthError when `data` nests arrays and objects deeper than `limit`.

    Text of at most `limit` opening brackets (most bodies) costs two `bytes.count` calls.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    if _depth(raw, limit + 1) > limit:
        raise JsonDepthError(limit)


def nesting_depth(data: bytes) -> int:
    """The deepest level of arrays and objects in `data`, brackets inside strings not counted:
    `b'[{"a": "]"}, []]'` is 2. Text that is not JSON gets a number all the same, never less
    than the depth a parser reaches before it finds the text invalid."""
    return _depth(data, None)


def _depth(data: bytes, enough: int | None) -> int:
    """The depth, counted up to `enough` at least (None: exactly).

    Each pass removes the innermost (empty) pairs: exactly one level of balanced text (of most
    bodies nearly all of their brackets: `[{"a": 1}, {"b": [2]}]` is gone in two passes), and
    at most one level of any text. A pass that removes nothing leaves `]]…[[` (no `[` is followed
    by `]`), whose depth is the surplus of `[`.
    """
    brackets = _outside_strings(data).translate(_AS_ARRAYS)
    removed = 0
    while brackets and (enough is None or removed < enough):
        # `enough - removed` opening brackets in a row: deep enough, without more passes (what
        # a deep body is made of, `[[[[…` or `{"a": [{"a": [[…` alike).
        if enough is not None and b"[" * (enough - removed) in brackets:
            return enough
        fewer = brackets.replace(b"[]", b"")
        if len(fewer) == len(brackets):
            return removed + max(0, fewer.count(b"[") - fewer.count(b"]"))
        brackets, removed = fewer, removed + 1
    return removed + (1 if brackets else 0)


def _outside_strings(data: bytes) -> bytes:
    """The brackets of `data` that are not inside a string.

    Escapes go first (`\\\\`, then `\\"`: in JSON only strings hold backslashes, and every
    escape is read left to right). What remains of a string is its quotes and brackets; two
    adjacent quotes can go (an empty string, or the end of one and the start of the next: no
    bracket changes sides), and what is left splits into outside and inside parts.
    """
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = data.translate(None, _NOT_QUOTES_OR_BRACKETS).replace(b'""', b"")
    if b'"' not in kept:
        return kept
    return b"".join(kept.split(b'"')[::2])
