"""OpenAPI 3.1 documents from descriptors and compiled bindings (docs/openapi.md).

    from protoc_gen_restmon.runtime.openapi import ApiInfo, build_document
    document = build_document(files, bindings, info=ApiInfo(title="Bookstore", version="1"))

- `document`: paths and operations, request bodies and responses, the document itself;
- `parameters`: OpenAPI paths from templates, path and query parameters;
- `schemas`, `scalars`, `patterns`: proto3 JSON Schemas, request and response views;
- `errors`: the error responses and google.rpc.Status;
- `comments`: documentation from `source_code_info`; `naming`: operationIds and names;
- `pool`: the descriptor pool a document is built from.
"""

from protoc_gen_restmon.runtime.openapi.document import ApiInfo, build_document

__all__ = ["ApiInfo", "build_document"]
