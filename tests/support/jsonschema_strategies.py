"""hypothesis-jsonschema's `from_schema`, working on the Hypothesis this project pins.

hypothesis-jsonschema 0.23.1 (the latest) draws object keys with the old protocol of
Hypothesis's private `many` (`while elements.more(): …`); Hypothesis 6.150+ replaced it with an
iterator. `_LegacyMany` speaks the old protocol over the new class, and is installed only when
the running Hypothesis lacks `more()`.

It also builds the strategy of an object's properties again for every object it draws, and a
regex strategy for one of our integer-range patterns costs a third of a second to build: they
are cached (`_cached_regex`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import hypothesis_jsonschema._from_schema as _from_schema
from hypothesis.internal.conjecture import utils as cu
from hypothesis_jsonschema import from_schema

__all__ = ["from_schema"]


class _LegacyMany:
    def __init__(self, data: Any, min_size: int, max_size: float, average_size: float) -> None:
        self._many = cu.many(data, min_size, max_size, average_size)
        self._many.__enter__()
        self._elements = iter(self._many)

    def more(self) -> bool:
        try:
            next(self._elements)
        except StopIteration:
            self._many.__exit__(None)
            return False
        return True

    def reject(self) -> None:
        self._many.reject()


_REGEXES: dict[tuple[str, int], Any] = {}
_from_js_regex = _from_schema.from_js_regex


def _cached_regex(pattern: str, alphabet: Any) -> Any:
    key = (pattern, id(alphabet))
    if key not in _REGEXES:
        _REGEXES[key] = (_from_js_regex(pattern, alphabet), alphabet)  # keeps `alphabet` alive
    return _REGEXES[key][0]


_from_schema.from_js_regex = _cached_regex
if not hasattr(cu.many, "more"):
    _from_schema.cu = SimpleNamespace(many=_LegacyMany)  # type: ignore[assignment]
