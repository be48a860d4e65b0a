"""Names in the document: operationIds, path parameter names, component names.

All of them are deterministic functions of the bindings in their given order, and unique in
one document (docs/openapi.md, "Names").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

# Component keys must match ^[a-zA-Z0-9.\-_]+$ (OpenAPI 3.1 §4.8.7.1); full proto names do.
INPUT_SUFFIX: Final = "-Input"  # `-` is never part of a proto name: no clash with a message


def component_name(full_name: str, *, request: bool) -> str:
    """`bookstore.v1.Book` (the response view) or `bookstore.v1.Book-Input` (the request view)."""
    return f"{full_name}{INPUT_SUFFIX}" if request else full_name


class UniqueNames:
    """Hands out `name`, then `name_2`, `name_3`, … for names already taken."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = set(taken)

    def take(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self._taken:
            n += 1
            candidate = f"{name}_{n}"
        self._taken.add(candidate)
        return candidate


def operation_id_base(service: str, method: str) -> str:
    """`bookstore.v1.BookstoreService`, `GetBook` -> `BookstoreService_GetBook`."""
    return f"{service.rsplit('.', 1)[-1]}_{method}"


_PLURALS: Final = (
    (re.compile(r"ies$"), "y"),  # policies -> policy
    (re.compile(r"(ss|sh|ch|x|z)es$"), r"\1"),  # addresses -> address, branches -> branch
    (re.compile(r"([^s])s$"), r"\1"),  # shelves -> shelve? see _IRREGULAR; books -> book
)
_IRREGULAR: Final = {"shelves": "shelf", "leaves": "leaf", "people": "person", "children": "child"}


def singular(word: str) -> str:
    """A collection literal's resource name: `shelves` -> `shelf`, `keyRings` -> `keyRing`.

    A heuristic for readability only: uniqueness comes from `UniqueNames`.
    """
    lower = word.lower()
    for plural, one in _IRREGULAR.items():
        if lower.endswith(plural):
            return word[: len(word) - len(plural)] + (
                one if word[-len(plural)].islower() else one.capitalize()
            )
    for pattern, replacement in _PLURALS:
        if pattern.search(word):
            return pattern.sub(replacement, word)
    return word


_PARAMETER_CHARS: Final = re.compile(r"[^A-Za-z0-9_.\-]")


def parameter_name(text: str) -> str:
    """A path parameter name from a literal or field path: only characters safe in a template."""
    cleaned = _PARAMETER_CHARS.sub("_", text)
    return cleaned or "param"
