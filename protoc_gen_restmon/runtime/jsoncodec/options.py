"""What writing and parsing proto3 JSON share: `JsonOptions`, and the types with forms of their own.

The mapping is https://protobuf.dev/programming-guides/json/, exactly as
`google.protobuf.json_format` implements it: `json_write` writes it, `json_read` parses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

__all__ = ["DEFAULT_OPTIONS", "JsonOptions"]


@dataclass(frozen=True, slots=True)
class JsonOptions:
    """How to write (and parse) JSON. The defaults are grpc-gateway v2's."""

    emit_unpopulated: bool = True  # write fields without presence even at their default
    use_proto_names: bool = False  # `display_name` rather than `displayName`
    enums_as_ints: bool = False  # `3` rather than `"GENRE_MYSTERY"`
    # Parsing, request bodies included: skip unknown keys and enum names rather than a 400.
    ignore_unknown_fields: bool = False


DEFAULT_OPTIONS: Final = JsonOptions()

# The wrappers (google.protobuf.Int32Value, …): written as their bare value.
WRAPPERS_FILE: Final = "google/protobuf/wrappers.proto"
# Written as one JSON string: "2024-01-31T12:00:00Z", "1.5s", "a.b,c".
STRING_FORMS: Final = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)
# Rare, and handed to json_format both ways.
DELEGATED: Final = frozenset(
    {
        "google.protobuf.Any",
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
    }
)

EPOCH_DAY: Final = date(1970, 1, 1).toordinal()
TIMESTAMP_MIN: Final = -62135596800  # 0001-01-01T00:00:00Z
TIMESTAMP_MAX: Final = 253402300799  # 9999-12-31T23:59:59Z
DURATION_MAX: Final = 315576000000  # seconds: 10,000 years, as duration.proto says
