"""Upb messages <-> betterproto objects, field by field rather than through wire bytes.

The crossings are guided by betterproto's own field metadata (numbers, oneof groups, `optional`,
wrappers) and the upb descriptor. betterproto's pure-Python wire codec takes longer than its JSON
(`bytes(book)` ~500 µs, `Book().parse(…)` ~800 µs for the 13-field Book of
benchmarks/bench_json.py). The result is what the wire route gives (the tests compare the two)
with these differences, all where betterproto's wire codec loses data: a map entry whose key and
value are both "" (or empty bytes or messages) is kept; a negative Duration with a fraction keeps
one sign; a negative enum number stays negative (betterproto reads -1 as 2**64 - 1). upb unknown
fields are not carried into betterproto objects (JSON never has any).

    book = to_betterproto(registry.message_class("bookstore.v1.Book")(title="Dune"), pb.Book)
    from_betterproto(book, registry.message_class("bookstore.v1.Book"))    # the upb message
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Final, TypeVar

import betterproto
from betterproto import PLACEHOLDER
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from protoc_gen_restmon.runtime.jsoncodec.registry import (
    DescriptorError,
    descriptor_of,
    is_map_field,
)
from protoc_gen_restmon.runtime.status import Code, RpcError

__all__ = ["RUST_CODEC", "from_betterproto", "to_betterproto"]

# Whether betterproto's own wire codec (`bytes(obj)`, `parse`) runs in Rust: on import betterproto
# swaps its pure-Python one for `betterproto_rust_codec` when that imports (`pip install
# "betterproto[rust-codec]"`). Optional, and only informative: nothing here imports or uses it.
RUST_CODEC: Final = sys.modules.get("betterproto_rust_codec") is not None

M = TypeVar("M", bound=Message)
B = TypeVar("B", bound=betterproto.Message)


_ToBetterproto = Callable[[Any], Any]  # a upb value -> the betterproto value
_FromBetterproto = Callable[[Any, Any], None]  # (betterproto object, upb message) -> fills it
_TO_BP: dict[tuple[Descriptor, type], _ToBetterproto] = {}
_FROM_BP: dict[tuple[type, Descriptor], _FromBetterproto] = {}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_betterproto(message: Message, betterproto_cls: type[B]) -> B:
    """The betterproto object holding the same message (`betterproto_cls().parse(wire)`)."""
    obj: B = _to_betterproto_plan(descriptor_of(message), betterproto_cls)(message)
    return obj


def from_betterproto(obj: betterproto.Message, upb_cls: type[M]) -> M:
    """The upb message holding the same message (`upb_cls.FromString(bytes(obj))`).

    An object the message cannot hold (a str in an int field, a naive datetime) is the
    service's fault: RpcError(INTERNAL).
    """
    message = upb_cls()
    try:
        _from_betterproto_plan(type(obj), descriptor_of(message))(obj, message)
    except (TypeError, ValueError, OverflowError, AttributeError) as err:
        raise RpcError(
            Code.INTERNAL, f"invalid {type(obj).__name__} from the service: {err}"
        ) from err
    return message


def _fields_by_number(betterproto_cls: type, descriptor: Descriptor) -> dict[int, Any]:
    """betterproto's metadata of each field, checked against the descriptor."""
    metadata = betterproto_cls._betterproto  # type: ignore[attr-defined]
    by_number = {meta.number: meta for meta in metadata.meta_by_field_name.values()}
    if set(by_number) != {field.number for field in descriptor.fields}:
        raise DescriptorError(
            f"{betterproto_cls.__name__} does not have the fields of {descriptor.full_name}:"
            " generated from another version of the proto?"
        )
    return by_number


def _to_betterproto_plan(descriptor: Descriptor, betterproto_cls: type) -> _ToBetterproto:
    key = (descriptor, betterproto_cls)
    found = _TO_BP.get(key)
    if found is None:
        # A recursive message type refers to itself while its plan is built: a forwarder
        # stands in until the real one exists.
        built: list[_ToBetterproto] = []
        _TO_BP[key] = lambda message: built[0](message)
        built.append(_build_to_betterproto(descriptor, betterproto_cls))
        found = _TO_BP[key] = built[0]
    return found


def _build_to_betterproto(descriptor: Descriptor, betterproto_cls: type) -> _ToBetterproto:
    metadata = betterproto_cls._betterproto  # type: ignore[attr-defined]
    by_number = _fields_by_number(betterproto_cls, descriptor)
    fields: dict[FieldDescriptor, tuple[str, _ToBetterproto | None, str]] = {}
    for field in descriptor.fields:
        name = metadata.field_name_by_number[field.number]
        group = metadata.meta_by_field_name[name].group or ""
        if is_map_field(field):
            entry_cls = metadata.cls_by_field[name]
            entry = entry_cls._betterproto
            value_field = field.message_type.fields_by_name["value"]  # type: ignore[union-attr]
            convert = _value_to_betterproto(
                value_field, entry.meta_by_field_name["value"], entry.cls_by_field.get("value")
            )
            fields[field] = (name, _map_to_betterproto(convert), group)
            continue
        convert = _value_to_betterproto(
            field, by_number[field.number], metadata.cls_by_field.get(name)
        )
        if field.is_repeated:
            convert = list if convert is None else _list_to_betterproto(convert)
        fields[field] = (name, convert, group)
    unset, groups = _unset_state(betterproto_cls)
    new = object.__new__

    def convert_message(message: Any) -> Any:
        state = unset.copy()
        current = groups.copy()
        for field, value in message.ListFields():
            name, convert, group = fields[field]
            state[name] = value if convert is None else convert(value)
            if group:
                current[group] = name
        state["_unknown_fields"] = b""
        state["_group_current"] = current
        obj: Any = new(betterproto_cls)
        object.__getattribute__(obj, "__dict__").update(state)
        return obj

    return convert_message


def _unset_state(betterproto_cls: type) -> tuple[dict[str, Any], dict[str, str | None]]:
    """What `betterproto_cls()` holds before any field is set, and its oneof groups' state.

    betterproto's constructor goes through its `__setattr__` for every field (and its
    `__post_init__` reads every field back): the bridge builds the object's `__dict__` as they
    would leave it instead, in the same order, with `_serialized_on_wire` true as after
    `parse` (the message was there, even if empty). The tests compare it with `parse`'s.
    """
    metadata = betterproto_cls._betterproto  # type: ignore[attr-defined]
    unset: dict[str, Any] = {"_serialized_on_wire": True}
    groups: dict[str, str | None] = {}
    for spec in dataclasses.fields(betterproto_cls):
        unset[spec.name] = spec.default  # PLACEHOLDER; None for proto3 `optional`
        group = metadata.meta_by_field_name[spec.name].group
        if group:
            groups.setdefault(group)
    return unset, groups


def _map_to_betterproto(convert: _ToBetterproto | None) -> _ToBetterproto:
    if convert is None:
        return dict
    return lambda entries: {key: convert(value) for key, value in entries.items()}


def _list_to_betterproto(convert: _ToBetterproto) -> _ToBetterproto:
    return lambda values: [convert(value) for value in values]


def _value_to_betterproto(
    field: FieldDescriptor, meta: Any, value_cls: type | None
) -> _ToBetterproto | None:
    """One value of `field` as betterproto holds it; None when it is the upb value itself."""
    if field.message_type is None:
        if field.enum_type is None:
            return None
        assert value_cls is not None
        return value_cls.try_value  # type: ignore[attr-defined,no-any-return]
    if value_cls is datetime:
        # betterproto's _Timestamp.to_datetime: whole microseconds, truncated
        return lambda ts: _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)
    if value_cls is timedelta:
        # betterproto's _Duration.to_timedelta
        return lambda d: timedelta(seconds=d.seconds, microseconds=d.nanos / 1e3)
    if meta.wraps:
        return _unwrap
    assert value_cls is not None
    return _to_betterproto_plan(field.message_type, value_cls)


def _unwrap(wrapper: Any) -> Any:
    return wrapper.value


def _from_betterproto_plan(betterproto_cls: type, descriptor: Descriptor) -> _FromBetterproto:
    key = (betterproto_cls, descriptor)
    found = _FROM_BP.get(key)
    if found is None:
        built: list[_FromBetterproto] = []  # recursive types: see _to_betterproto_plan
        _FROM_BP[key] = lambda obj, message: built[0](obj, message)
        built.append(_build_from_betterproto(betterproto_cls, descriptor))
        found = _FROM_BP[key] = built[0]
    return found


def _build_from_betterproto(betterproto_cls: type, descriptor: Descriptor) -> _FromBetterproto:
    """Mirror of betterproto's `Message.dump`: which fields it writes, and how.

    Fields are read raw, the way betterproto's own `__eq__` and `__repr__` do: an unset field holds
    `betterproto.PLACEHOLDER` (its default is built only when the attribute is read, which `dump`
    does for every field, and without end for a recursive message type), and of a oneof only the
    member `_group_current` names is set.
    """
    metadata = betterproto_cls._betterproto  # type: ignore[attr-defined]
    _fields_by_number(betterproto_cls, descriptor)
    steps: list[tuple[str, str, str, bool, _Store]] = []
    for field in descriptor.fields:
        name = metadata.field_name_by_number[field.number]
        meta = metadata.meta_by_field_name[name]
        # Set in a oneof or proto3 `optional`: written even at its default value.
        selected = bool(meta.group) or bool(meta.optional)
        store = _store(field, meta, metadata, name)
        steps.append((name, field.name, meta.group or "", selected, store))

    def fill(obj: Any, message: Any) -> None:
        raw = object.__getattribute__(obj, "__dict__")  # past betterproto's __getattribute__
        chosen = raw["_group_current"]
        for name, upb_name, group, selected, store in steps:
            value = raw[name]
            if value is PLACEHOLDER or value is None:  # None: an unset wrapper or `optional`
                continue
            if group and chosen.get(group) != name:
                continue
            store(message, upb_name, value, selected)
        if raw["_unknown_fields"]:
            message.MergeFromString(raw["_unknown_fields"])

    return fill


# store(upb message, upb field name, betterproto value, written even when default)
_Store = Callable[[Any, str, Any, bool], None]


def _store(field: FieldDescriptor, meta: Any, metadata: Any, name: str) -> _Store:
    if is_map_field(field):
        entry = metadata.cls_by_field[name]._betterproto
        value_field = field.message_type.fields_by_name["value"]  # type: ignore[union-attr]
        put = _put(value_field, entry.meta_by_field_name["value"], entry.cls_by_field["value"])
        return _store_map(put)
    put = _put(field, meta, metadata.cls_by_field.get(name))
    if field.is_repeated:
        return _store_list(put)
    if put is None:
        return _store_scalar
    return lambda message, upb_name, value, selected: put(
        getattr(message, upb_name), value, selected
    )


def _store_scalar(message: Any, upb_name: str, value: Any, selected: bool) -> None:
    # betterproto writes a default only where presence says so; -0.0 counts as a default.
    if value or selected:
        setattr(message, upb_name, value)


def _store_list(put: _Put | None) -> _Store:
    def store(message: Any, upb_name: str, values: Any, selected: bool) -> None:
        target = getattr(message, upb_name)
        if put is None:
            target.extend(values)
        else:
            for value in values:
                put(target.add(), value, True)  # every element is written, even an empty one

    return store


def _store_map(put: _Put | None) -> _Store:
    def store(message: Any, upb_name: str, entries: Any, selected: bool) -> None:
        target = getattr(message, upb_name)
        if put is None:
            target.update(entries)
        else:
            for key, value in entries.items():
                put(target[key], value, True)

    return store


# put(upb sub-message, betterproto value, written even when default)
_Put = Callable[[Any, Any, bool], None]


def _put(field: FieldDescriptor, meta: Any, value_cls: type | None) -> _Put | None:
    """How one value of a message-typed field goes into its upb sub-message; None: scalar."""
    if field.message_type is None:
        return None
    if value_cls is datetime:
        return _put_timestamp
    if value_cls is timedelta:
        return _put_duration
    if meta.wraps:
        return _put_wrapped
    assert value_cls is not None
    fill = _from_betterproto_plan(value_cls, field.message_type)

    def put_message(target: Any, obj: Any, selected: bool) -> None:
        fill(obj, target)
        if selected or obj._serialized_on_wire:  # set (or received) empty: still written
            target.SetInParent()

    return put_message


def _put_timestamp(target: Any, value: datetime, selected: bool) -> None:
    # betterproto's _Timestamp.from_datetime, in integers; the epoch is its default.
    offset = value - _EPOCH
    seconds = offset.days * 86400 + offset.seconds
    if seconds or offset.microseconds or selected:
        target.seconds, target.nanos = seconds, offset.microseconds * 1000
        target.SetInParent()


def _put_duration(target: Any, value: timedelta, selected: bool) -> None:
    micros = value // _MICROSECOND
    if micros or selected:
        seconds, rest = divmod(abs(micros), 1_000_000)
        sign = -1 if micros < 0 else 1
        target.seconds, target.nanos = sign * seconds, sign * rest * 1000
        target.SetInParent()


def _put_wrapped(target: Any, value: Any, selected: bool) -> None:
    if value:  # the wrapper itself is written, its default value (-0.0 included) is not
        target.value = value
    target.SetInParent()
