"""runtime/openapi/serialize.py: JSON and YAML text that reads back to the same document."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.openapi.serialize import dump_json, dump_yaml

# What a JSON document holds; text without surrogates (proto comments are UTF-8).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)

# Strings YAML 1.1 would read as another type if they were written bare.
TRICKY = [
    "on",
    "off",
    "yes",
    "No",
    "null",
    "~",
    "",
    "200",
    "1e3",
    "0x1F",
    "0o17",
    "1_000",
    "2024-01-01",
    "12:30:00",
    ".inf",
    "-.nan",
    "true",
    "#x",
    "- a",
    "a: b",
    "'q'",
    '"d"',
    "@type",
    "%x",
    "*x",
    "&x",
    "!x",
    "|",
    ">",
    "^[^/]+$",
    "line\nbreak",
    " lead",
    "tail ",
]


@settings(max_examples=150, deadline=None)
@given(DOCUMENTS)
def test_dump_json_reads_back_the_same_document(document: Any) -> None:
    assert json.loads(dump_json({"x": document})) == {"x": document}


@settings(max_examples=150, deadline=None)
@given(DOCUMENTS)
def test_dump_yaml_reads_back_the_same_document(document: Any) -> None:
    assert yaml.safe_load(dump_yaml({"x": document})) == {"x": document}


def test_dump_yaml_quotes_strings_yaml_would_read_as_other_types() -> None:
    document = {text: text for text in TRICKY}
    assert yaml.safe_load(dump_yaml(document)) == document


def test_both_keep_the_documents_key_order() -> None:
    document = {"openapi": "3.1.0", "info": {"version": "v1", "title": "t"}, "paths": {}}
    assert list(json.loads(dump_json(document))) == ["openapi", "info", "paths"]
    assert dump_yaml(document).splitlines()[:3] == ["openapi: 3.1.0", "info:", "  version: v1"]


def test_dump_yaml_writes_a_shared_object_out_in_full_without_anchors() -> None:
    status = {"$ref": "#/components/schemas/google.rpc.Status"}
    text = dump_yaml({"a": status, "b": status})
    assert "&" not in text and "*" not in text
    assert yaml.safe_load(text) == {"a": status, "b": status}


def test_dump_yaml_keeps_a_long_description_on_one_line() -> None:
    description = " ".join(["word"] * 100)
    assert f"description: {description}\n" in dump_yaml({"description": description})


def test_dump_json_is_utf8_text_ending_in_a_newline() -> None:
    text = dump_json({"title": "Bücher — 本"})
    assert text == '{\n  "title": "Bücher — 本"\n}\n'


def test_dump_json_refuses_nan() -> None:
    try:
        dump_json({"x": float("nan")})
    except ValueError:
        return
    raise AssertionError("NaN was written")


def test_tuples_are_written_as_lists() -> None:
    document = {"enum": ("A", "B")}
    assert (
        json.loads(dump_json(document))
        == yaml.safe_load(dump_yaml(document))
        == {"enum": ["A", "B"]}
    )
