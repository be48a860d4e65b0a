"""HTTP request → request message (docs/http-transcoding.md §3), pure: no I/O.

- `request`: `build_request` — body first, then path variables, then query parameters;
- `values`: query strings parsed, URL text (path variables, query values) set into fields,
  decoded by `jsoncodec.scalars` as JSON values are.
- `system`: Google's system parameters (`$alt`, `key`, …): dropped, and `$alt`'s enum encoding.
"""
