"""The codec's oracle (json_format) and a hypothesis strategy for any message, shared by the codec
tests."""

from __future__ import annotations

import json
import math
from typing import Any

from betterproto import PLACEHOLDER
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions

ALL_OPTIONS = [
    JsonOptions(emit_unpopulated=emit, use_proto_names=proto, enums_as_ints=ints)
    for emit in (True, False)
    for proto in (False, True)
    for ints in (False, True)
]
MESSAGES = [
    "bookstore.v1.Book",
    "bookstore.v1.Shelf",
    "bookstore.v1.ShelfEvent",
    "bookstore.v1.ListBooksRequest",
    "bookstore.v1.ListBooksResponse",
    "bookstore.v1.StoreStats",
    "bookstore.v1.CheckoutBookRequest",
    "common.v1.PageInfo",
    "codectest.v1.AllTypes",
]
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def oracle_json(message: Message, options: JsonOptions) -> bytes:
    """What json_format writes, made compact: the bytes `to_json` must produce."""
    document = json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=options.emit_unpopulated,
        preserving_proto_field_name=options.use_proto_names,
        use_integers_for_enums=options.enums_as_ints,
        descriptor_pool=message.DESCRIPTOR.file.pool,
    )
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def same_document(ours: bytes, theirs: bytes) -> bool:
    """Equal JSON up to the order of map entries: two upb maps with the same entries need not
    iterate alike, so only the same message object gives byte-identical output."""
    return bool(json.loads(ours) == json.loads(theirs))


def betterproto_fields(value: Any) -> Any:
    """A betterproto object as comparable data: `==` on the objects calls [nan] != [nan]."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return [betterproto_fields(item) for item in value]
    if isinstance(value, dict):
        return sorted((key, betterproto_fields(item)) for key, item in value.items())
    metadata = getattr(type(value), "_betterproto", None)
    if metadata is None:
        return (type(value).__name__, value)
    fields = {  # read raw: unset fields hold a placeholder (their defaults are built on access)
        name: "unset" if raw is PLACEHOLDER else betterproto_fields(raw)
        for name in metadata.sorted_field_names
        for raw in (value.__dict__[name],)
    }
    return (type(value).__name__, value._serialized_on_wire, fields)


def wire(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)


# --- A strategy for any message, walking its descriptor ------------------------------------------

_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_MASK_PATHS = st.lists(
    st.from_regex(r"[a-z]{1,4}(_[a-z]{1,4}){0,2}(\.[a-z]{1,4}){0,2}", fullmatch=True), max_size=3
)
_ANY_PAYLOADS = [
    "codectest.v1.Leaf",
    "common.v1.Money",
    "google.protobuf.Timestamp",
    "google.protobuf.Int64Value",
]
MAX_DEPTH = 3

# What betterproto 2.0.0b7 loses between wire bytes and its objects, found by the crossing test;
# `messages(..., betterproto=True)` does not generate these.
BETTERPROTO_LOSSES = (
    "Timestamp and Duration below a microsecond (they become datetime and timedelta)",
    "the presence of a Timestamp at the epoch or of a zero Duration (equal to the default)",
    "negative Durations with a fraction: written back with mismatched signs, an invalid Duration",
    "Durations past 2**53 microseconds (float arithmetic)",
    "map entries whose key and value are both empty strings, bytes or messages (the test skips"
    " default keys)",
    "the sign of negative enum numbers: -1 is read as 2**64 - 1 (written back right, though)",
)


def scalar_values(field: FieldDescriptor, betterproto: bool = False) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _RANGES:
        low, high = _RANGES[kind]
        return st.integers(low, high) | st.sampled_from([low, high, 0, 1])  # the extremes, often
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=False) | st.just(math.nan)
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=False) | st.just(math.nan)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=8)  # any Unicode but lone surrogates, astral planes included
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=8)
    assert field.enum_type is not None
    if field.enum_type.full_name == "google.protobuf.NullValue":
        return st.just(0)  # JSON null: other numbers have no JSON form
    numbers = [value.number for value in field.enum_type.values]
    unknown = st.integers(0 if betterproto else -(2**31), 2**31 - 1)
    return st.sampled_from(numbers) | unknown  # open enums: unknown numbers too


def fill(draw: st.DrawFn, message: Any, depth: int, betterproto: bool = False) -> None:
    """Set a random selection of `message`'s fields (a `_pb2` message) to random values.

    `betterproto`: only what betterproto itself carries through (see BETTERPROTO_LOSSES).
    """
    descriptor: Descriptor = message.DESCRIPTOR
    name = descriptor.full_name
    if name == "google.protobuf.Timestamp":
        message.seconds = draw(st.integers(-62135596800, 253402300799))
        message.nanos = draw(st.integers(0, 999_999_999) | st.sampled_from([0, 1_000_000, 1000]))
        if betterproto:
            message.nanos -= message.nanos % 1000
            message.seconds = message.seconds or 1
    elif name == "google.protobuf.Duration":
        limit = 10**9 if betterproto else 315576000000
        seconds = draw(st.integers(-limit, limit))
        nanos = draw(st.integers(0, 999_999_999))
        if betterproto:
            seconds, nanos = (seconds or 1), (0 if seconds < 0 else nanos - nanos % 1000)
        message.seconds, message.nanos = seconds, -nanos if seconds < 0 else nanos
    elif name == "google.protobuf.FieldMask":
        message.paths.extend(draw(_MASK_PATHS))
    elif name in ("google.protobuf.Struct", "google.protobuf.ListValue", "google.protobuf.Value"):
        shape = {"google.protobuf.Struct": dict, "google.protobuf.ListValue": list}.get(name)
        value = draw(_JSON_VALUES.filter(lambda v: shape is None or isinstance(v, shape)))
        json_format.ParseDict(value, message)
    elif name == "google.protobuf.Any":
        payload_type = message.DESCRIPTOR.file.pool.FindMessageTypeByName(
            draw(st.sampled_from(_ANY_PAYLOADS))
        )
        from google.protobuf import message_factory

        payload = message_factory.GetMessageClass(payload_type)()
        fill(draw, payload, depth + 1, betterproto)
        message.Pack(payload)
    else:
        fill_fields(draw, message, depth, betterproto)


def fill_fields(draw: st.DrawFn, message: Any, depth: int, betterproto: bool) -> None:
    chosen_oneofs: set[str] = set()
    for field in message.DESCRIPTOR.fields:
        is_message = field.message_type is not None
        if (is_message and depth >= MAX_DEPTH) or not draw(st.booleans()):
            continue
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in chosen_oneofs:
                continue
            chosen_oneofs.add(oneof.name)
        target = getattr(message, field.name) if (field.is_repeated or is_message) else None
        if is_message and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            keys = st.lists(scalar_values(key_field), max_size=3, unique=True)
            for key in draw(keys):
                if betterproto and not key:
                    continue  # see BETTERPROTO_LOSSES
                if value_field.message_type is not None:
                    fill(draw, target[key], depth + 1, betterproto)
                else:
                    target[key] = draw(scalar_values(value_field, betterproto))
        elif field.is_repeated and is_message:
            for _ in range(draw(st.integers(0, 2))):
                fill(draw, target.add(), depth + 1, betterproto)
        elif field.is_repeated:
            target.extend(draw(st.lists(scalar_values(field, betterproto), max_size=3)))
        elif is_message:
            target.SetInParent()
            fill(draw, target, depth + 1, betterproto)
        else:
            setattr(message, field.name, draw(scalar_values(field, betterproto)))


@st.composite
def messages(draw: st.DrawFn, cls: type[Message], betterproto: bool = False) -> Message:
    message = cls()
    fill(draw, message, 0, betterproto)
    return message
