"""The schemas against the gateway's codec, both ways (differential, hypothesis):

- what `runtime.jsoncodec.write` writes for any message validates against the response view;
- JSON generated from the request view (hypothesis-jsonschema) is accepted by
  `runtime.jsoncodec.read`;
- a value the schema accepts for a field is accepted by the reader, so whatever the reader
  refuses the schema refuses too, for any JSON value thrown at any field (except what JSON
  Schema cannot say, listed in docs/openapi.md).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.jsoncodec.options import DEFAULT_OPTIONS, JsonOptions
from protoc_gen_restmon.runtime.jsoncodec.read import from_json
from protoc_gen_restmon.runtime.jsoncodec.write import to_json
from protoc_gen_restmon.runtime.openapi import build_document
from protoc_gen_restmon.runtime.openapi.comments import Comments
from protoc_gen_restmon.runtime.openapi.naming import component_name
from protoc_gen_restmon.runtime.openapi.pool import build_pool
from protoc_gen_restmon.runtime.openapi.schemas import Schemas
from protoc_gen_restmon.runtime.status import RpcError
from tests.support.codec_cases import MESSAGES, messages
from tests.support.jsonschema_strategies import from_schema
from tests.support.openapi_tools import codec_request, compiled, inline_refs, validator

FEW = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
OPTIONS = [
    DEFAULT_OPTIONS,
    JsonOptions(emit_unpopulated=False, use_proto_names=True, enums_as_ints=True),
]


class World:
    def __init__(self, raw: bytes) -> None:
        self.files, self.bindings = compiled(raw)
        self.pool: DescriptorPool = build_pool(self.files)
        self._documents: dict[JsonOptions, dict[str, Any]] = {}

    def cls(self, full_name: str) -> type[Message]:
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def components(self, options: JsonOptions) -> dict[str, Any]:
        """Both views of every message of MESSAGES, as a document's components."""
        if options not in self._documents:
            schemas = Schemas(Comments(self.files), options)
            for name in MESSAGES:
                message = self.pool.FindMessageTypeByName(name)
                schemas.message_ref(message, request=False)
                schemas.message_ref(message, request=True)
            self._documents[options] = {"components": {"schemas": schemas.components()}}
        return self._documents[options]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(codec_request(tmp_path_factory.mktemp("openapi_codec")))


@pytest.mark.slow
def test_the_echo_document_is_valid(world: World) -> None:
    from openapi_spec_validator import validate

    validate(build_document(world.files, world.bindings))


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "proto_names_ints_sparse"])
@pytest.mark.parametrize("name", MESSAGES)
def test_written_json_validates_against_the_response_view(
    world: World, name: str, options: JsonOptions
) -> None:
    check = validator(world.components(options), component_name(name, request=False))

    @FEW
    @given(messages(world.cls(name)))
    def written_is_valid(message: Message) -> None:
        try:
            written = to_json(message, options)
        except RpcError:  # no JSON form (a Value holding NaN, a mask path json_format refuses)
            assume(False)
        errors = [error.message for error in check.iter_errors(json.loads(written))]
        assert not errors, (written, errors[:3])

    written_is_valid()


def field_values(world: World, name: str) -> st.SearchStrategy[dict[str, Any]]:
    """`{key: value}` objects with one field, its value generated from its property schema.

    Field by field: hypothesis-jsonschema builds the strategy of a whole object again for
    every object it draws, too slow for AllTypes' 70 fields in CI. What holds between fields
    (oneofs, a name twice) is tested below and in test_whole_objects_….
    """
    document = world.components(DEFAULT_OPTIONS)
    schema = document["components"]["schemas"][name + "-Input"]
    keys = sorted(schema["properties"]) + sorted(
        key.strip("^$") for key in schema.get("patternProperties", {})
    )
    properties = {
        **schema["properties"],
        **{key.strip("^$"): value for key, value in schema.get("patternProperties", {}).items()},
    }
    # Nested messages are null (or empty lists and maps): each of MESSAGES is tested on its own,
    # and a Book nested in ShelfEvent would cost half a minute here.
    strategies = {key: from_schema(inline_refs(properties[key], document, 0)) for key in keys}
    return st.sampled_from(keys).flatmap(
        lambda key: strategies[key].map(lambda value: {key: value})
    )


@pytest.mark.parametrize("name", MESSAGES)
def test_json_from_the_request_view_is_read(world: World, name: str) -> None:
    cls = world.cls(name)

    @FEW
    @given(field_values(world, name))
    def generated_is_read(value: Any) -> None:
        from_json(json.dumps(value), cls)  # raises on anything the reader refuses

    generated_is_read()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bookstore.v1.Shelf", "common.v1.PageInfo"])
def test_whole_objects_from_the_request_view_are_read(world: World, name: str) -> None:
    document = world.components(DEFAULT_OPTIONS)
    schema = inline_refs(document["components"]["schemas"][name + "-Input"], document, 2)
    cls = world.cls(name)

    @settings(FEW, max_examples=15)
    @given(from_schema(schema))
    def generated_is_read(value: Any) -> None:
        from_json(json.dumps(value), cls)

    generated_is_read()


# Values for any field: the forms the reader and the schema must agree on, edge cases first.
_TEXTS = st.sampled_from(
    [
        "",
        "0",
        "-0",
        "007",
        "1e3",
        "1.5",
        "NaN",
        "Infinity",
        "-Infinity",
        "+1",
        " 1",
        "1_0",
        "2147483648",
        "-2147483649",
        "4294967296",
        "9223372036854775808",
        "18446744073709551616",
        "COLOR_RED",
        "COLOR_NOPE",
        "true",
        "Zm9v",
        "Zm9v=",
        "Zm8=",
        "Zm8",
        "Zm-_",
        "Z",
        "Zm9v!",
        "1.5s",
        "-3s",
        "1.1234567890s",
        "315576000001s",
        "1s ",
        "a.b,fooBar",
        "a..b",
        "a,,b",
        "2024-01-31T12:00:00Z",
        "2024-01-31t12:00:00.5+01:00",
        "2023-02-29T00:00:00Z",
        "2024-01-31T24:00:00Z",
        "2020-1-1T1:2:3Z",
        "0001-01-01T00:00:00+01:00",
        "3.4028235e38",
        "1e400",
    ]
) | st.text(max_size=6).filter(lambda text: not text.endswith("\n"))
_NUMBERS = (
    st.sampled_from(
        [0, -1, 1.5, 2**31 - 1, 2**31, -(2**31) - 1, 2**32, 2**63, 2**64, 1e300, 3.5e38, 12.0]
    )
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_SCALARS = st.none() | st.booleans() | _NUMBERS | _TEXTS
ANY_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_TEXTS | st.sampled_from(["text", "count", "@type"]), inner, max_size=3)
    ),
    max_leaves=5,
)


@pytest.mark.parametrize("name", ["codectest.v1.AllTypes", "bookstore.v1.Book"])
def test_what_the_schema_accepts_the_reader_accepts(world: World, name: str) -> None:
    """Any JSON value at any key: valid against the request view means read without error,
    so every value the reader refuses (that the schema can describe) the schema refuses."""
    document = world.components(DEFAULT_OPTIONS)
    check = validator(document, component_name(name, request=True))
    schema = document["components"]["schemas"][name + "-Input"]
    keys = [*sorted(schema["properties"]), "unknownKey"]
    cls = world.cls(name)

    @settings(FEW, max_examples=300)
    @given(st.dictionaries(st.sampled_from(keys), ANY_JSON, min_size=1, max_size=2))
    def agree(value: dict[str, Any]) -> None:
        if check.is_valid(value):
            from_json(json.dumps(value), cls)

    agree()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("fInt32", 2**31),
        ("fInt32", "2147483648"),
        ("fInt32", 1.5),
        ("fInt32", True),
        ("fUint32", -1),
        ("fInt64", "9223372036854775808"),
        ("fBool", "true"),
        ("fBytes", "Z"),
        ("fBytes", "Zm9v!"),
        ("fColor", "COLOR_NOPE"),
        ("fColor", 2**31),
        ("fFloat", 3.5e38),
        ("fDouble", "1e400"),
        ("timestamp", "2020-1-1T1:2:3Z"),
        ("timestamp", "2023-02-29T00:00:00Z"),
        ("duration", "1.1234567890s"),
        ("duration", "315576000001s"),
        ("fieldMask", "a..b"),
        ("mInt32", {"x": "y"}),
        ("mBool", {"yes": "COLOR_RED"}),
        ("wInt32", "x"),
        ("any", {"value": 1}),
        ("unknownKey", 1),
        ("rLeaf", [None]),
    ],
)
def test_refused_values_are_refused_by_the_schema(world: World, key: str, value: Any) -> None:
    document = world.components(DEFAULT_OPTIONS)
    check = validator(document, component_name("codectest.v1.AllTypes", request=True))
    with pytest.raises(RpcError):
        from_json(json.dumps({key: value}), world.cls("codectest.v1.AllTypes"))
    assert not check.is_valid({key: value})


@pytest.mark.parametrize(
    "value",
    [
        {"choiceText": "a", "choiceNumber": 1},
        {"choiceText": "a", "choice_number": 1},
        {"fInt32": 1, "f_int32": 2},
    ],
)
def test_refused_objects_are_refused_by_the_schema(world: World, value: dict[str, Any]) -> None:
    document = world.components(DEFAULT_OPTIONS)
    check = validator(document, component_name("codectest.v1.AllTypes", request=True))
    with pytest.raises(RpcError):
        from_json(json.dumps(value), world.cls("codectest.v1.AllTypes"))
    assert not check.is_valid(value)


def test_a_null_member_does_not_count_in_a_oneof(world: World) -> None:
    document = world.components(DEFAULT_OPTIONS)
    check = validator(document, component_name("codectest.v1.AllTypes", request=True))
    value = {"choiceText": None, "choiceNumber": 1}
    from_json(json.dumps(value), world.cls("codectest.v1.AllTypes"))
    assert check.is_valid(value)


CHOICE = {  # AllTypes' oneof `choice`: five members, more than PAIRS_UP_TO (the linear form)
    "choiceText": "a",
    "choiceNumber": 1,
    "choiceLeaf": {},
    "choiceEmpty": {},
    "choiceTime": "2024-01-01T00:00:00Z",
}


@pytest.mark.parametrize("request_view", [True, False], ids=["request", "response"])
def test_a_large_oneof_takes_none_or_one_member_never_two(world: World, request_view: bool) -> None:
    document = world.components(DEFAULT_OPTIONS)
    check = validator(document, component_name("codectest.v1.AllTypes", request=request_view))
    # A response view requires every field without presence: give them all, from the writer.
    base = json.loads(to_json(world.cls("codectest.v1.AllTypes")())) if not request_view else {}
    members = list(CHOICE.items())
    if not request_view:  # a Leaf as the writer writes it: every field, defaults included
        leaf = json.loads(to_json(world.cls("codectest.v1.Leaf")()))
        members = [(key, leaf if key == "choiceLeaf" else value) for key, value in members]
    assert check.is_valid(base)
    for key, value in members:
        assert check.is_valid(base | {key: value}), key
    for i, (a, x) in enumerate(members):
        for b, y in members[i + 1 :]:
            assert not check.is_valid(base | {a: x, b: y}), (a, b)
