"""Names in the document: operationIds, path parameter names, component names.

All of them are deterministic functions of the bindings in their given order, and unique in
one document (docs/openapi.md, "Names").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

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


def unique_titles(schemas: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The components with titles unique in the document.

    Client generators name their classes after titles (openapi-python-client refuses two models
    with one title), and every message has two views and may share its short name with a
    message of another package. A request view's title gets an `Input` suffix (`Book`,
    `BookInput`); a title still shared is qualified by the package (`BookstoreV1Book`).
    """
    wanted = {name: _short_title(name, schema) for name, schema in schemas.items()}
    counts = Counter(title for title in wanted.values() if title is not None)
    unique = UniqueNames()
    titled: dict[str, dict[str, Any]] = {}
    for name, schema in schemas.items():
        title = wanted[name]
        if title is None:
            titled[name] = schema
            continue
        if counts[title] > 1:
            title = _qualified_title(name)
        titled[name] = schema | {"title": unique.take(title)}
    return titled


def _short_title(name: str, schema: dict[str, Any]) -> str | None:
    title = schema.get("title")
    if not isinstance(title, str):
        return None
    return f"{title}Input" if name.endswith(INPUT_SUFFIX) else title


def _qualified_title(name: str) -> str:
    """`bookstore.v1.Book-Input` -> `BookstoreV1BookInput`."""
    parts = re.split(r"[.\-_]", name)
    return "".join(part[:1].upper() + part[1:] for part in parts if part)
