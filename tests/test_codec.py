"""The proto3 JSON codec against google.protobuf.json_format over an independent build (`_pb2`)."""

from __future__ import annotations

import contextlib
import datetime
import json
import math
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import Descriptor
from hypothesis import given
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.jsoncodec.bridge import from_betterproto, to_betterproto
from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from protoc_gen_restmon.runtime.jsoncodec.read import from_json, json_to_wire, merge_json
from protoc_gen_restmon.runtime.jsoncodec.registry import DescriptorError, DescriptorRegistry
from protoc_gen_restmon.runtime.jsoncodec.write import to_json, wire_to_json
from protoc_gen_restmon.runtime.status import Code, RpcError
from tests.support.codec_cases import (
    ALL_OPTIONS,
    EXAMPLES,
    MESSAGES,
    betterproto_fields,
    messages,
    oracle_json,
    same_document,
    wire,
)
from tests.support.runtime_fixtures import CodecWorld

# --- Writing and parsing against json_format ------------------------------------------------------


@pytest.mark.parametrize("name", MESSAGES)
@EXAMPLES
@given(data=st.data())
def test_to_json_matches_json_format(
    codec_world: CodecWorld, name: str, data: st.DataObject
) -> None:
    raw = wire(data.draw(messages(codec_world.oracle(name))))
    ours, theirs = codec_world.ours(name).FromString(raw), codec_world.oracle(name).FromString(raw)
    for options in ALL_OPTIONS:
        expected = oracle_json(theirs, options)
        assert to_json(theirs, options) == expected, options  # byte for byte on the same message
        assert to_json(ours, options) == oracle_json(ours, options), options
        assert same_document(to_json(ours, options), expected), options  # the two builds agree


@pytest.mark.parametrize("name", MESSAGES)
@EXAMPLES
@given(data=st.data())
def test_from_json_round_trips_and_matches_json_format(
    codec_world: CodecWorld, name: str, data: st.DataObject
) -> None:
    raw = wire(data.draw(messages(codec_world.oracle(name))))
    cls = codec_world.ours(name)
    for options in ALL_OPTIONS:
        text = to_json(cls.FromString(raw), options)
        assert wire(from_json(text, cls, options)) == raw, options
        try:
            theirs = json_format.Parse(text, codec_world.oracle(name)())
        except json_format.ParseError as err:
            # json_format refuses the float32 extremes it writes itself: 3.4028235e+38 is over
            # FLT_MAX as a double, yet it is FLT_MAX's shortest form.
            assert "Float value too" in str(err)
            continue
        assert wire(theirs) == raw, options


@pytest.mark.parametrize("name", MESSAGES)
@EXAMPLES
@given(data=st.data())
def test_wire_paths_match_message_paths(
    codec_world: CodecWorld, name: str, data: st.DataObject
) -> None:
    raw = wire(data.draw(messages(codec_world.oracle(name))))
    cls = codec_world.ours(name)
    text = to_json(cls.FromString(raw))
    assert wire_to_json(raw, cls) == text
    assert (
        cls.FromString(json_to_wire(text, cls)) == cls.FromString(raw)
        or wire(cls.FromString(json_to_wire(text, cls))) == raw
    )


@pytest.mark.parametrize("name", MESSAGES)
@EXAMPLES
@given(data=st.data())
def test_to_betterproto_matches_betterproto_parse(
    codec_world: CodecWorld, name: str, data: st.DataObject
) -> None:
    raw = wire(data.draw(messages(codec_world.oracle(name), betterproto=True)))
    cls, bp_cls = codec_world.ours(name), codec_world.betterproto(name)

    ours, theirs = to_betterproto(cls.FromString(raw), bp_cls), bp_cls().parse(raw)

    assert betterproto_fields(ours) == betterproto_fields(theirs)
    # What betterproto writes back (maps may come out in another order: compare through upb).
    assert wire(cls.FromString(bytes(ours))) == wire(cls.FromString(bytes(theirs)))


@pytest.mark.parametrize("name", MESSAGES)
@EXAMPLES
@given(data=st.data())
def test_to_betterproto_builds_the_objects_betterproto_builds(
    codec_world: CodecWorld, name: str, data: st.DataObject
) -> None:
    """The bridge fills `__dict__` itself: the same keys in the same order, oneof state and
    unknown fields as betterproto's constructor and `parse` leave them, at every depth."""
    raw = wire(data.draw(messages(codec_world.oracle(name), betterproto=True)))
    cls, bp_cls = codec_world.ours(name), codec_world.betterproto(name)

    ours, theirs = to_betterproto(cls.FromString(raw), bp_cls), bp_cls().parse(raw)

    assert _object_state(ours) == _object_state(theirs)


def _object_state(value: Any) -> Any:
    """What a betterproto object holds besides its field values: `__dict__`'s keys in order,
    `_group_current`, `_unknown_fields`; for each message inside it too."""
    if isinstance(value, list):
        return [_object_state(item) for item in value]
    if isinstance(value, dict):
        return sorted((key, _object_state(item)) for key, item in value.items())
    if getattr(type(value), "_betterproto", None) is None:
        return None
    state = value.__dict__
    inner = {key: _object_state(item) for key, item in state.items() if not key.startswith("_")}
    return (list(state), state["_group_current"], state["_unknown_fields"], inner)


@pytest.mark.parametrize("name", MESSAGES)
@EXAMPLES
@given(data=st.data())
def test_from_betterproto_matches_betterproto_bytes(
    codec_world: CodecWorld, name: str, data: st.DataObject
) -> None:
    raw = wire(data.draw(messages(codec_world.oracle(name), betterproto=True)))
    cls, bp_cls = codec_world.ours(name), codec_world.betterproto(name)
    obj = bp_cls().parse(raw)

    ours, theirs = from_betterproto(obj, cls), cls.FromString(bytes(obj))

    assert wire(ours) == wire(theirs)
    expected = oracle_json(codec_world.oracle(name).FromString(raw), JsonOptions())
    assert same_document(to_json(ours), expected)  # and so the JSON survives the round trip


def test_from_betterproto_follows_presence_as_betterproto_writes_it(
    codec_world: CodecWorld,
) -> None:
    package = codec_world.package("bookstore.v1")
    money = codec_world.package("common.v1").Money
    cls = codec_world.ours("bookstore.v1.Book")
    books = [
        package.Book(price=money()),  # an empty oneof member is written
        package.Book(page_count=0),  # proto3 optional at its default: written
        package.Book(edition=0, subtitle=""),  # wrappers holding defaults: written
        package.Book(average_rating=-0.0, weight_kg=math.nan),  # -0.0 is a default, NaN is not
        package.Book(audio_length=datetime.timedelta(0)),  # a zero Duration is the default
        package.Book(reviews=[package.BookReview()]),  # empty list elements are written
    ]
    for book in books:
        assert wire(from_betterproto(book, cls)) == wire(cls.FromString(bytes(book))), book
    all_types = codec_world.package("codectest.v1").AllTypes(w_float=-0.0, m_sfixed64={1: -0.0})
    ours = from_betterproto(all_types, codec_world.ours("codectest.v1.AllTypes"))
    assert wire(ours) == wire(ours.FromString(bytes(all_types)))  # -0.0 in a wrapper is a default


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(
            lambda p: p.Book(audio_length=-datetime.timedelta(seconds=1, microseconds=500)),
            {"audioLength": "-1.000500s"},
            id="negative-duration-keeps-one-sign",
        ),
        pytest.param(
            lambda p: p.Book(labels={"": ""}),
            {"labels": {"": ""}},
            id="map-entry-of-defaults-kept",
        ),
    ],
)
def test_from_betterproto_keeps_what_betterproto_bytes_loses(
    codec_world: CodecWorld, build: Any, expected: dict[str, Any]
) -> None:
    book = build(codec_world.package("bookstore.v1"))
    compact = JsonOptions(emit_unpopulated=False)
    cls = codec_world.ours("bookstore.v1.Book")
    assert json.loads(to_json(from_betterproto(book, cls), compact)) == expected
    wire_route = cls.FromString(bytes(book))
    with contextlib.suppress(RpcError):  # the Duration comes back invalid: no JSON at all
        assert json.loads(to_json(wire_route, compact)) != expected


def test_from_betterproto_reports_an_impossible_object_as_internal(codec_world: CodecWorld) -> None:
    book = codec_world.package("bookstore.v1").Book(page_count="many")
    with pytest.raises(RpcError) as caught:
        from_betterproto(book, codec_world.ours("bookstore.v1.Book"))
    assert caught.value.code == Code.INTERNAL
    assert caught.value.message.startswith("invalid Book from the service: ")


# --- Names: where betterproto's own JSON goes wrong ----------------------------------------------


def test_to_json_uses_json_names_where_betterproto_to_dict_does_not(
    codec_world: CodecWorld,
) -> None:
    book = codec_world.ours("bookstore.v1.Book")(isbn_13="9780441013593", isbn_10="0441013597")
    book.genres.append(1)
    obj = to_betterproto(book, codec_world.betterproto("bookstore.v1.Book"))

    theirs = obj.to_dict()
    ours = json.loads(to_json(book, JsonOptions(emit_unpopulated=False)))

    assert theirs == {"isbn13": "9780441013593", "isbn10": "0441013597", "genres": ["FICTION"]}
    assert ours == {"isbn": "9780441013593", "isbn10": "0441013597", "genres": ["GENRE_FICTION"]}


def test_from_json_reads_what_betterproto_from_dict_drops(codec_world: CodecWorld) -> None:
    document = {"isbn": "9780441013593", "isbn10": "0441013597"}
    bp_cls = codec_world.betterproto("bookstore.v1.Book")

    theirs = bp_cls().from_dict(document)
    ours = to_betterproto(
        from_json(json.dumps(document), codec_world.ours("bookstore.v1.Book")), bp_cls
    )

    assert (theirs.isbn_13, theirs.isbn_10) == ("", "")  # both keys silently ignored
    assert (ours.isbn_13, ours.isbn_10) == ("9780441013593", "0441013597")


@pytest.mark.parametrize(
    "document",
    [
        pytest.param('{"isbn": "1", "isbn10": "2", "pageCount": 3}', id="json-names"),
        pytest.param('{"isbn_13": "1", "isbn_10": "2", "page_count": 3}', id="proto-names"),
    ],
)
def test_from_json_accepts_json_and_proto_names(codec_world: CodecWorld, document: str) -> None:
    book = from_json(document, codec_world.ours("bookstore.v1.Book"))
    assert (book.isbn_13, book.isbn_10, book.page_count) == ("1", "2", 3)


# --- Bad input -----------------------------------------------------------------------------------

BAD_BOOKS = [
    pytest.param(
        b'{"title": "Dune"',
        "invalid JSON for bookstore.v1.Book: Expecting ',' delimiter at line 1 column 17",
        id="malformed-json",
    ),
    pytest.param(
        b"\xff{}", "invalid JSON for bookstore.v1.Book: not UTF-8 at byte 0", id="not-utf8"
    ),
    pytest.param(
        b'{"title": "a", "title": "b"}',
        'invalid JSON for bookstore.v1.Book: key "title" appears twice in one object',
        id="duplicate-key",
    ),
    pytest.param(
        b'{"averageRating": NaN}',
        'invalid JSON for bookstore.v1.Book: NaN is not JSON (write it as a string: "NaN")',
        id="bare-nan",
    ),
    pytest.param(
        b'[{"title": "Dune"}]',
        "expected an object (bookstore.v1.Book), got an array",
        id="array-at-top-level",
    ),
    pytest.param(
        b'"Dune"', 'expected an object (bookstore.v1.Book), got "Dune"', id="string-at-top-level"
    ),
    pytest.param(
        b"null", "expected an object (bookstore.v1.Book), got null", id="null-at-top-level"
    ),
    pytest.param(b'{"title": 12}', 'field "title": expected a string, got 12', id="wrong-type"),
    pytest.param(
        b'{"authors": "a"}', 'field "authors": expected an array, got "a"', id="scalar-for-list"
    ),
    pytest.param(
        b'{"authors": ["a", null]}',
        'field "authors[1]": expected a string, got null',
        id="null-in-list",
    ),
    pytest.param(
        b'{"pageCount": 2147483648}',
        'field "pageCount": int32 value 2147483648 is out of range [-2147483648, 2147483647]',
        id="int32-out-of-range",
    ),
    pytest.param(
        b'{"catalogNumber": "-1"}',
        'field "catalogNumber": uint64 value "-1" is out of range [0, 18446744073709551615]',
        id="uint64-negative",
    ),
    pytest.param(
        b'{"pageCount": 1.5}',
        'field "pageCount": invalid int32 value 1.5: expected a decimal integer',
        id="fraction-for-int",
    ),
    pytest.param(
        b'{"weightKg": 1e39}',
        'field "weightKg": float value 1e+39 is out of range',
        id="float-out-of-range",
    ),
    pytest.param(
        b'{"averageRating": 1e999}',
        'field "averageRating": double value out of range (write "Infinity" as a string)',
        id="double-overflow",
    ),
    pytest.param(
        b'{"bogus": 1}', 'field "bogus": no such field in bookstore.v1.Book', id="unknown-field"
    ),
    pytest.param(
        b'{"reviews": [{"stars": 5}, {"mood": "happy"}]}',
        'field "reviews[1].mood": no such field in bookstore.v1.Book.Review',
        id="unknown-nested-field",
    ),
    pytest.param(
        b'{"format": "FORMAT_SCROLL"}',
        'field "format": "FORMAT_SCROLL" is not a value of enum bookstore.v1.Book.Format',
        id="bad-enum-name",
    ),
    pytest.param(
        b'{"genres": [true]}',
        'field "genres[0]": expected a bookstore.v1.Genre name or number, got true',
        id="bool-for-enum",
    ),
    pytest.param(
        b'{"publishTime": "1965-08-01"}',
        'field "publishTime": invalid Timestamp "1965-08-01": expected RFC 3339, e.g.'
        " 2024-01-31T12:00:00Z",
        id="bad-timestamp",
    ),
    pytest.param(
        b'{"publishTime": "1965-02-30T00:00:00Z"}',
        'field "publishTime": invalid Timestamp "1965-02-30T00:00:00Z":'
        " day is out of range for month",
        id="impossible-date",
    ),
    pytest.param(
        b'{"audioLength": "5 minutes"}',
        'field "audioLength": invalid Duration "5 minutes": expected seconds, e.g. "1.5s"',
        id="bad-duration",
    ),
    pytest.param(
        b'{"etag": "ab$d"}',
        'field "etag": invalid bytes value "ab$d": expected base64',
        id="bad-base64",
    ),
    pytest.param(
        b'{"etag": "abcde"}',
        'field "etag": invalid bytes value "abcde": expected base64',
        id="truncated-base64",
    ),
    pytest.param(
        b'{"chapterTitles": {"one": "Dune"}}',
        'field "chapterTitles[one]": invalid int32 map key "one": expected a decimal integer',
        id="bad-map-key",
    ),
    pytest.param(
        b'{"regionalPrices": {"EU": {"units": "x"}}}',
        'field "regionalPrices[EU].units": invalid int64 value "x": expected a decimal integer',
        id="bad-map-value",
    ),
    pytest.param(
        b'{"price": {"units": "1"}, "donor": "Ann"}',
        'field "donor": oneof acquisition already set by price',
        id="two-oneof-members",
    ),
    pytest.param(
        b'{"isbn": "1", "isbn_13": "2"}',
        'field "isbn_13": given twice, by its JSON name and by its proto name',
        id="json-and-proto-name",
    ),
    pytest.param(
        b'{"subtitle": {"value": "x"}}',
        'field "subtitle": expected a string, got an object',
        id="wrapper-as-object",
    ),
]


@pytest.mark.parametrize(("document", "message"), BAD_BOOKS)
def test_from_json_rejects_bad_input_naming_the_field(
    codec_world: CodecWorld, document: bytes, message: str
) -> None:
    with pytest.raises(RpcError) as caught:
        from_json(document, codec_world.ours("bookstore.v1.Book"))
    assert (caught.value.code, caught.value.message) == (Code.INVALID_ARGUMENT, message)
    assert caught.value.http_status == 400


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(b'{"bogus": 1, "title": "Dune"}', {"title": "Dune"}, id="unknown-field"),
        pytest.param(b'{"format": "FORMAT_SCROLL"}', {}, id="unknown-enum-name"),
        pytest.param(
            b'{"genres": ["GENRE_POETRY", "GENRE_OPERA"]}',
            {"genres": ["GENRE_POETRY"]},
            id="in-a-list",
        ),
        pytest.param(b'{"reviews": [{"mood": 1}]}', {"reviews": [{}]}, id="nested"),
    ],
)
def test_from_json_ignores_unknown_names_when_asked(
    codec_world: CodecWorld, document: bytes, expected: dict[str, Any]
) -> None:
    lenient = JsonOptions(emit_unpopulated=False, ignore_unknown_fields=True)
    book = from_json(document, codec_world.ours("bookstore.v1.Book"), lenient)
    assert json.loads(to_json(book, lenient)) == expected


ACCEPTED_FORMS = [
    pytest.param('{"etag": "+/+/"}', {"etag": "+/+/"}, id="base64-standard"),
    pytest.param('{"etag": "-_-_"}', {"etag": "+/+/"}, id="base64-url-safe"),
    pytest.param('{"etag": "YWI"}', {"etag": "YWI="}, id="base64-unpadded"),
    pytest.param('{"copiesSold": 12}', {"copiesSold": "12"}, id="int64-as-number"),
    pytest.param('{"pageCount": "1e2"}', {"pageCount": 100}, id="int-in-exponent-form"),
    pytest.param('{"pageCount": 7.0}', {"pageCount": 7}, id="int-as-integral-float"),
    pytest.param(
        '{"genres": [1.0, "2e0"]}',
        {"genres": ["GENRE_FICTION", "GENRE_NON_FICTION"]},
        id="enum-integral",
    ),
    pytest.param('{"format": 2}', {"format": "FORMAT_PAPERBACK"}, id="enum-by-number"),
    pytest.param('{"format": 9}', {"format": 9}, id="enum-unknown-number"),
    pytest.param('{"averageRating": "-Infinity"}', {"averageRating": "-Infinity"}, id="infinity"),
    pytest.param('{"weightKg": "NaN"}', {"weightKg": "NaN"}, id="nan"),
    pytest.param(
        '{"publishTime": "1965-08-01T02:00:00.5+02:00"}',
        {"publishTime": "1965-08-01T00:00:00.500Z"},
        id="timestamp-with-offset",
    ),
    pytest.param('{"audioLength": "-0.000001s"}', {"audioLength": "-0.000001s"}, id="duration"),
    pytest.param('{"subtitle": ""}', {"subtitle": ""}, id="wrapper-at-default"),
    pytest.param('{"title": null, "price": null}', {}, id="null-is-unset"),
    pytest.param('{"price": {}}', {"price": {}}, id="empty-message-is-set"),
]


@pytest.mark.parametrize(("document", "written"), ACCEPTED_FORMS)
def test_from_json_accepts_every_form_of_a_value(
    codec_world: CodecWorld, document: str, written: dict[str, Any]
) -> None:
    book = from_json(document, codec_world.ours("bookstore.v1.Book"))
    assert json.loads(to_json(book, JsonOptions(emit_unpopulated=False))) == written


def test_merge_json_fills_one_field_of_a_message(codec_world: CodecWorld) -> None:
    request = codec_world.ours("bookstore.v1.CreateBookRequest")(parent="shelves/s1")
    merge_json(request, {"book": {"title": "Dune", "pageCount": "896"}})
    assert (request.parent, request.book.title, request.book.page_count) == (
        "shelves/s1",
        "Dune",
        896,
    )
    with pytest.raises(RpcError, match=r'^field "book.genres\[0\]": expected a bookstore.v1.Genre'):
        merge_json(request, {"book": {"genres": [1.5]}})


def test_from_json_refuses_deep_nesting(codec_world: CodecWorld) -> None:
    deep = '{"child": ' * 150 + "{}" + "}" * 150
    with pytest.raises(RpcError) as caught:
        from_json(deep, codec_world.ours("codectest.v1.AllTypes"))
    assert caught.value.code == Code.INVALID_ARGUMENT
    # The text's depth is checked before it is parsed (jsoncodec/depth.py).
    assert caught.value.message.endswith("nested deeper than 100 levels")


def test_merge_json_refuses_deep_messages(codec_world: CodecWorld) -> None:
    """A decoded document given to merge_json directly is bounded by its own depth check."""
    deep: dict[str, Any] = {}
    for _ in range(150):
        deep = {"child": deep}
    message = codec_world.ours("codectest.v1.AllTypes")()
    with pytest.raises(RpcError) as caught:
        merge_json(message, deep)
    assert caught.value.message.endswith("messages nested deeper than 100")


def json_documents(descriptor: Descriptor) -> st.SearchStrategy[Any]:
    """Objects keyed by the message's field names (and others) holding any JSON at all."""
    names = [f.json_name for f in descriptor.fields] + [f.name for f in descriptor.fields]
    keys = st.sampled_from(names) | st.text(max_size=4)

    def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3)

    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
    values = st.recursive(scalars, containers, max_leaves=8)
    return st.dictionaries(keys, values, max_size=6) | values


@pytest.mark.parametrize("name", ["bookstore.v1.Book", "codectest.v1.AllTypes"])
@EXAMPLES
@given(data=st.data())
def test_from_json_fails_only_with_invalid_argument(
    codec_world: CodecWorld, name: str, data: st.DataObject
) -> None:
    cls = codec_world.ours(name)
    document = data.draw(json_documents(cls.DESCRIPTOR))
    text = json.dumps(document)  # NaN and Infinity included: they must be refused too
    for options in (JsonOptions(), JsonOptions(ignore_unknown_fields=True)):
        try:
            from_json(text, cls, options)
        except RpcError as err:
            assert err.code == Code.INVALID_ARGUMENT


@EXAMPLES
@given(raw=st.binary(max_size=40))
def test_from_json_fails_only_with_invalid_argument_on_any_bytes(
    codec_world: CodecWorld, raw: bytes
) -> None:
    try:
        from_json(raw, codec_world.ours("bookstore.v1.Book"))
    except RpcError as err:
        assert err.code == Code.INVALID_ARGUMENT


# --- Server-side failures ------------------------------------------------------------------------


def test_to_json_reports_a_message_without_json_form_as_internal(codec_world: CodecWorld) -> None:
    book = codec_world.ours("bookstore.v1.Book")()
    book.publish_time.seconds = 253402300800  # year 10000
    with pytest.raises(RpcError) as caught:
        to_json(book)
    assert caught.value.code == Code.INTERNAL
    assert caught.value.message.startswith("cannot write bookstore.v1.Book as JSON: ")


def test_wire_to_json_reports_bad_wire_bytes_as_internal(codec_world: CodecWorld) -> None:
    with pytest.raises(RpcError) as caught:
        wire_to_json(b"\x0a\x05ab", codec_world.ours("bookstore.v1.Book"))
    assert caught.value.code == Code.INTERNAL
    assert caught.value.message.startswith("invalid bookstore.v1.Book in wire format")


# --- The registry --------------------------------------------------------------------------------


def test_registry_loads_a_file_shared_by_two_packages_once(codec_world: CodecWorld) -> None:
    registry = DescriptorRegistry()
    registry.add_module(codec_world.package("common.v1")._restmon_monitor)
    registry.add_module(
        codec_world.package("bookstore.v1")._restmon_monitor
    )  # needs money.proto too (from common.v1's module)
    assert registry.message_class("common.v1.Money").DESCRIPTOR.file.name == "common/v1/money.proto"


def test_registry_refuses_a_different_definition_under_the_same_name(
    codec_world: CodecWorld,
) -> None:
    registry = DescriptorRegistry()
    registry.add_module(codec_world.package("common.v1")._restmon_monitor)
    changed = descriptor_pb2.FileDescriptorProto()
    codec_world.registry.pool.FindFileByName("common/v1/money.proto").CopyToProto(changed)
    changed.message_type[0].field[0].name = "currency"
    with pytest.raises(
        DescriptorError, match=r"common/v1/money.proto: other.module defines it differently"
    ):
        registry.add_file(
            "common/v1/money.proto", changed.SerializeToString(), source="other.module"
        )


def test_registry_ignores_comments_when_comparing_files(codec_world: CodecWorld) -> None:
    registry = DescriptorRegistry()
    registry.add_module(codec_world.package("common.v1")._restmon_monitor)
    bare = descriptor_pb2.FileDescriptorProto()
    codec_world.registry.pool.FindFileByName("common/v1/money.proto").CopyToProto(bare)
    bare.ClearField("source_code_info")
    registry.add_file("common/v1/money.proto", bare.SerializeToString())


def test_registry_reports_a_missing_import(codec_world: CodecWorld) -> None:
    registry = DescriptorRegistry()
    resources = descriptor_pb2.FileDescriptorProto()
    codec_world.registry.pool.FindFileByName("bookstore/v1/resources.proto").CopyToProto(resources)
    with pytest.raises(DescriptorError, match=r"^bookstore/v1/resources.proto \(from x\): "):
        registry.add_file("bookstore/v1/resources.proto", resources.SerializeToString(), source="x")


def test_registry_message_class_is_built_once(codec_world: CodecWorld) -> None:
    registry = codec_world.registry
    assert registry.message_class("bookstore.v1.Book") is registry.message_class(
        "bookstore.v1.Book"
    )
    assert registry.message_class(".bookstore.v1.Book") is registry.message_class(
        "bookstore.v1.Book"
    )


def test_registry_names_an_unknown_message(codec_world: CodecWorld) -> None:
    with pytest.raises(DescriptorError, match=r"message shop.v1.Cart is not in the registry"):
        codec_world.registry.message_class("shop.v1.Cart")


def test_registry_refuses_a_module_without_descriptors() -> None:
    with pytest.raises(DescriptorError, match="has no FILE_DESCRIPTORS"):
        DescriptorRegistry().add_module(json)


def test_registry_pool_is_not_the_default_pool(codec_world: CodecWorld) -> None:
    ours, theirs = codec_world.ours("bookstore.v1.Book"), codec_world.oracle("bookstore.v1.Book")
    assert ours is not theirs
    assert ours.DESCRIPTOR.file.pool is codec_world.registry.pool
