"""Pages (AIP-158), filters (a subset of AIP-160) and update masks (AIP-134) for the fakes."""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tests.support.cloud_fakes.errors import invalid_argument

T = TypeVar("T")

# `labels.env=prod`, `labels.env:prod`, `state: PAUSED`, `name:payments`: one comparison.
_COMPARISON = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*([=:])\s*(\S+)\s*$")


def page(items: Sequence[T], size: int, token: str, key: Callable[[T], str]) -> tuple[list[T], str]:
    """One page of `items` (sorted by `key`) after `token`, and the token of the next page.

    The token is opaque to clients (the last key of the previous page, base64): a token that is
    not one of ours is INVALID_ARGUMENT, as a real service answers.
    """
    if size < 0:
        raise invalid_argument("page_size", "must not be negative")
    after = _read_token(token) if token else None
    ordered = sorted(items, key=key)
    remaining = [item for item in ordered if after is None or key(item) > after]
    chosen = remaining[: size or len(remaining)]
    more = len(remaining) > len(chosen)
    return chosen, _token(key(chosen[-1])) if more else ""


def _token(last: str) -> str:
    return base64.urlsafe_b64encode(f"after:{last}".encode()).decode()


def _read_token(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith("after:"):
        raise invalid_argument("page_token", f"{token!r} is not a page token of this list")
    return text.removeprefix("after:")


def matches(filter_text: str, item: Any, fields: dict[str, Callable[[Any], str]]) -> bool:
    """Whether `item` passes `filter_text`: empty, or one `field=value` / `field:value`.

    `fields` maps what may be filtered on ("state", "name") to how to read it from an item; a
    `labels.<key>` term reads the item's labels map. `:` is "has" (a substring), `=` equality.
    """
    if not filter_text.strip():
        return True
    found = _COMPARISON.match(filter_text)
    if found is None:
        raise invalid_argument("filter", f"cannot parse {filter_text!r}")
    name, operator, wanted = found.groups()
    if name.startswith("labels."):
        value = item.labels.get(name.removeprefix("labels."))
        if value is None:
            return False
    elif name in fields:
        value = fields[name](item)
    else:
        known = ", ".join([*sorted(fields), "labels.<key>"])
        raise invalid_argument("filter", f"cannot filter on {name!r}; known: {known}")
    return value == wanted if operator == "=" else wanted in value


def apply_mask(target: Any, source: Any, paths: Sequence[str], allowed: Sequence[str]) -> None:
    """Copy the fields named by `paths` (dotted, snake_case) from `source` to `target`.

    An empty mask copies every field in `allowed`; a path outside `allowed` is INVALID_ARGUMENT
    naming it, as AIP-134 asks.
    """
    for path in paths or allowed:
        if not any(path == a or path.startswith(a + ".") for a in allowed):
            raise invalid_argument("update_mask", f"{path!r} cannot be updated")
        *parents, leaf = path.split(".")
        into, out_of = target, source
        for part in parents:
            into, out_of = getattr(into, part), getattr(out_of, part)
        if leaf not in {f.name for f in dataclasses.fields(into)}:
            raise invalid_argument("update_mask", f"{path!r} is not a field")
        setattr(into, leaf, getattr(out_of, leaf))
