"""The proto3 JSON codec over upb messages built from embedded descriptors.

- `options`: `JsonOptions`, the switches of the mapping (unpopulated fields, names, enums, …);
- `read`: JSON text → messages (strict JSON, proto3 JSON mapping, errors with the field path);
- `write`: messages → JSON bytes, exactly as `google.protobuf.json_format` writes them;
- `scalars`: one JSON value → one field value (ranges, base64, enums, Timestamp, Duration);
- `registry`: the descriptor pool filled from generated monitor modules, and its message classes;
- `bridge`: upb messages ⇄ betterproto dataclasses, field by field.
"""
