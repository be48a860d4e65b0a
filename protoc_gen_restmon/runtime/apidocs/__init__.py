"""The gateway's API description: its OpenAPI document and the docs page showing it.

- `document`: `ApiDocument`, the document built once from the gateway's descriptors and
  bindings (`runtime.openapi.build_document`), written per mount point;
- `pages`: `ApiPages`, answering `GET /openapi.json`, `/docs` and the docs page's assets
  (Swagger UI, vendored in `swagger_ui/`).
"""

from protoc_gen_restmon.runtime.apidocs.document import ApiDocument, gateway_files
from protoc_gen_restmon.runtime.apidocs.pages import SWAGGER_UI_VERSION, ApiPages, page_paths

__all__ = ["SWAGGER_UI_VERSION", "ApiDocument", "ApiPages", "gateway_files", "page_paths"]
