"""pysource.to_source: the printed expression rebuilds the value, and black leaves it unchanged."""

from __future__ import annotations

import black
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.plugin.pysource import to_source
from protoc_gen_restmon.runtime import specs

NAMESPACE = {name: getattr(specs, name) for name in dir(specs) if not name.startswith("_")}

texts = st.text(max_size=120)
field_paths = st.builds(
    specs.FieldPath,
    proto=st.lists(texts, min_size=1, max_size=4).map(tuple),
    json=st.lists(texts, min_size=1, max_size=4).map(tuple),
)
segments = st.builds(specs.Segment, kind=st.sampled_from(specs.SegmentKind), value=texts)
refs = st.builds(specs.MessageRef, proto_name=texts, module=texts, name=texts)
bindings = st.builds(
    specs.Binding,
    service=texts,
    method=texts,
    http_method=st.sampled_from(["GET", "POST", "HEAD", "*"]),
    template=texts,
    segments=st.lists(segments, max_size=6).map(tuple),
    variables=st.lists(
        st.builds(
            specs.PathVariable,
            field=field_paths,
            start=st.integers(0, 9),
            end=st.integers(0, 9),
            reserved_expansion=st.booleans(),
        ),
        max_size=3,
    ).map(tuple),
    verb=texts,
    body=st.none() | field_paths,
    response_body=st.none() | field_paths,
    request=refs,
    response=refs,
    cardinality=st.sampled_from(specs.Cardinality),
    fully_decode_reserved_expansion=st.booleans(),
)


def rebuild(source: str) -> object:
    namespace = dict(NAMESPACE)
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace["VALUE"]


@settings(max_examples=150, deadline=None)
@given(st.lists(bindings, max_size=4).map(tuple))
def test_printed_bindings_rebuild_the_same_value(value: tuple[specs.Binding, ...]) -> None:
    source = to_source(value, prefix="VALUE = ") + "\n"
    assert rebuild(source) == value


@settings(max_examples=150, deadline=None)
@given(st.lists(bindings, max_size=4).map(tuple))
def test_printed_bindings_are_black_stable(value: tuple[specs.Binding, ...]) -> None:
    source = to_source(value, prefix="VALUE = ") + "\n"
    assert black.format_str(source, mode=black.Mode()) == source


def test_short_values_stay_on_one_line() -> None:
    assert to_source(specs.Segment(specs.SegmentKind.LITERAL, "v1")) == (
        'Segment(kind=SegmentKind.LITERAL, value="v1")'
    )
    assert to_source(("a",)) == '("a",)'
    assert to_source(()) == "()"
