"""The JSON depth check (runtime/jsoncodec/depth.py) against json.loads, the oracle."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.jsoncodec.depth import (
    MAX_DEPTH,
    JsonDepthError,
    check_depth,
    nesting_depth,
)
from protoc_gen_restmon.runtime.jsoncodec.read import JsonSyntaxError, load_json

# Strings full of what the scan must not count: brackets, quotes, backslashes.
TRICKY_TEXT = st.text(alphabet='[]{}"\\ab/\n\u00e9', max_size=8)
# Infinity and NaN are not JSON: json.loads takes them, load_json (strict) refuses them.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TRICKY_TEXT
)


def reference_depth(value: Any) -> int:
    """How deeply a decoded value nests arrays and objects (a scalar: 0)."""
    if isinstance(value, list):
        return 1 + max(map(reference_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(reference_depth, value.values()), default=0)
    return 0


def nested(levels: int, inner: Any) -> Any:
    for index in range(levels):
        inner = [inner] if index % 2 else {"k[": inner}
    return inner


documents = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
    max_leaves=20,
)
deep_documents = st.builds(nested, st.integers(0, 2 * MAX_DEPTH), documents)

DEPTHS = [
    pytest.param(b"1", 0, id="scalar"),
    pytest.param(b"[]", 1, id="empty-array"),
    pytest.param(b'[{"a": "]"}, []]', 2, id="bracket-in-string"),
    pytest.param(b'["\\\\", ["\\"]]"]]', 2, id="escaped-backslash-then-quote"),
    pytest.param(b'{"a": "[[[[", "b": {"c": []}}', 3, id="opening-brackets-in-string"),
    pytest.param(b"[" * 300, 300, id="unterminated"),
    pytest.param(b"]][[[", 1, id="closing-first"),
]


@pytest.mark.parametrize(("text", "depth"), DEPTHS)
def test_nesting_depth_counts_brackets_outside_strings(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth


@settings(max_examples=100, deadline=None)
@given(deep_documents, st.sampled_from([None, 0, 2]))
def test_nesting_depth_is_the_documents_depth(document: Any, indent: int | None) -> None:
    text = json.dumps(document, indent=indent, ensure_ascii=False).encode()
    assert nesting_depth(text) == reference_depth(document)


@settings(max_examples=100, deadline=None)
@given(deep_documents)
def test_load_json_parses_like_json_loads_up_to_the_limit(document: Any) -> None:
    text = json.dumps(document, ensure_ascii=False)
    if reference_depth(document) <= MAX_DEPTH:
        assert load_json(text.encode()) == json.loads(text)
        return
    with pytest.raises(JsonSyntaxError, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_json(text.encode())


@pytest.mark.parametrize("levels", [MAX_DEPTH, MAX_DEPTH + 1, 100_000])
def test_check_depth_limit_is_exact(levels: int) -> None:
    text = b"[" * levels + b"]" * levels
    if levels <= MAX_DEPTH:
        check_depth(text)
        return
    with pytest.raises(JsonDepthError, match=f"deeper than {MAX_DEPTH} levels"):
        check_depth(text)


def test_load_json_refuses_deep_text_that_is_invalid_too() -> None:
    """A parser recurses into an unterminated prefix before it finds the text invalid."""
    with pytest.raises(JsonSyntaxError, match="nested deeper than 100 levels"):
        load_json("[" * 100_000)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64) | st.text(alphabet='[]{}"\\ ,:1a', max_size=64))
def test_load_json_on_any_text_is_a_value_or_its_error(data: bytes | str) -> None:
    with contextlib.suppress(JsonSyntaxError):  # anything else escaping fails the test
        load_json(data)
