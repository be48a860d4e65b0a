"""json_write.field_to_json (`response_body`) against json_format of the whole message, one key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from protoc_gen_restmon.runtime.jsoncodec.write import field_to_json
from protoc_gen_restmon.runtime.status import Code, RpcError
from tests.support.codec_cases import ALL_OPTIONS, EXAMPLES, MESSAGES, messages, oracle_json, wire
from tests.support.runtime_fixtures import CodecWorld


def picked_keys(message: Message, options: JsonOptions) -> dict[str, bytes]:
    """The old path: json_format writes the whole message, then each field's key is picked and
    its value re-encoded (`null` when the key is absent); by proto name."""
    document = json.loads(oracle_json(message, options))
    return {
        field.name: json.dumps(
            document.get(field.name if options.use_proto_names else field.json_name),
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        for field in message.DESCRIPTOR.fields
    }


@pytest.mark.parametrize("name", MESSAGES)
@EXAMPLES
@given(data=st.data())
def test_field_to_json_matches_json_format_key(
    codec_world: CodecWorld, name: str, data: st.DataObject
) -> None:
    raw = wire(data.draw(messages(codec_world.oracle(name))))
    for message in (
        codec_world.ours(name).FromString(raw),
        codec_world.oracle(name).FromString(raw),
    ):
        for options in ALL_OPTIONS:
            written = {
                f.name: field_to_json(message, f.name, options) for f in message.DESCRIPTOR.fields
            }
            assert written == picked_keys(message, options), options


def test_unset_fields_are_null_or_their_default(codec_world: CodecWorld) -> None:
    empty = codec_world.ours("codectest.v1.AllTypes")()
    emit, omit = JsonOptions(), JsonOptions(emit_unpopulated=False)
    written = {
        name: (field_to_json(empty, name, emit), field_to_json(empty, name, omit))
        for name in ("f_string", "r_string", "m_int32", "leaf", "w_int32", "o_int64")
    }
    assert written == {
        "f_string": (b'""', b"null"),
        "r_string": (b"[]", b"null"),
        "m_int32": (b"{}", b"null"),
        "leaf": (b"null", b"null"),
        "w_int32": (b"null", b"null"),
        "o_int64": (b"null", b"null"),
    }


def test_negative_zero_is_written_like_any_set_double(codec_world: CodecWorld) -> None:
    message: Any = codec_world.ours("codectest.v1.AllTypes")(f_double=-0.0, f_float=0.0)
    omit = JsonOptions(emit_unpopulated=False)
    written = (field_to_json(message, "f_double", omit), field_to_json(message, "f_float", omit))
    assert written == (b"-0.0", b"null")


def test_field_options_shape_the_value(codec_world: CodecWorld) -> None:
    response: Any = codec_world.ours("bookstore.v1.ListBooksResponse")()
    response.books.add(isbn_13="978", format=2)
    chosen = JsonOptions(emit_unpopulated=False, use_proto_names=True, enums_as_ints=True)
    assert field_to_json(response, "books", chosen) == b'[{"format":2,"isbn_13":"978"}]'
    default = json.loads(field_to_json(response, "books"))
    assert (default[0]["format"], default[0]["isbn"], default[0]["authors"]) == (
        "FORMAT_PAPERBACK",
        "978",
        [],
    )


def test_unknown_field_is_internal(codec_world: CodecWorld) -> None:
    with pytest.raises(RpcError) as caught:
        field_to_json(codec_world.ours("bookstore.v1.Book")(), "nope")
    assert (caught.value.code, caught.value.message) == (
        Code.INTERNAL,
        'bookstore.v1.Book has no field "nope"',
    )
