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
from pathlib import Path
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
    (oneofs, a name twice) is in tests/test_openapi_mapping.py.
    """
    document = world.components(DEFAULT_OPTIONS)
    schema = document["components"]["schemas"][name + "-Input"]
    keys = sorted(schema["properties"]) + sorted(
        key.strip("^$") for key in schema.get("patternProperties", {})
    )
    properties = {**schema["properties"], **{
        key.strip("^$"): value for key, value in schema.get("patternProperties", {}).items()
    }}
    strategies = {key: from_schema(inline_refs(properties[key], document, 2)) for key in keys}
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
