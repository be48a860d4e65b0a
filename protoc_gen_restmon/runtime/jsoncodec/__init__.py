"""The proto3 JSON codec over upb messages built from embedded descriptors.

- `options`: `JsonOptions`, the switches of the mapping (unpopulated fields, names, enums, …);
- `read`: JSON text → messages (`load_json`: the one strict JSON loader; errors with the path);
- `depth`: how deeply JSON text nests, checked before any parser recurses (limit 100);
- `write`: messages → JSON bytes, exactly as `google.protobuf.json_format` writes them;
- `scalars`: the one value decoder, of JSON values and of URL text (ranges, base64, enums,
  Timestamp, Duration, FieldMask, wrappers), and `FieldValueError`, a bad value at a field path;
- `registry`: the descriptor pool filled from generated monitor modules, and its message classes;
- `bridge`: upb messages ⇄ betterproto dataclasses, field by field.
"""
