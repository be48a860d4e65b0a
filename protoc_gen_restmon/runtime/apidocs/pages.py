"""What a gateway answers besides its API: `GET /openapi.json`, the docs page and its assets.

The docs page is Swagger UI 5 (`swagger_ui/`, vendored from npm `swagger-ui-dist`, see its
README), served by the gateway itself with a strict CSP: scripts, styles and requests from the
page's own origin only, no inline script, no eval (Swagger UI needs neither: the Chromium test
records every CSP violation and finds none), images from the origin and `data:` URLs (Swagger
UI's icons are data URLs in its CSS). Its URLs are absolute paths below the request's
`root_path`, so the page works wherever the gateway is mounted.
"""

from __future__ import annotations

import asyncio
import html
import importlib.resources
import string
from collections.abc import Callable
from dataclasses import dataclass

from protoc_gen_restmon.runtime.apidocs.document import MAX_ROOTS, ApiDocument
from protoc_gen_restmon.runtime.gateway.http import JSON, Headers, Scope, Send
from protoc_gen_restmon.runtime.status import Code, RpcError

__all__ = ["SWAGGER_UI_VERSION", "ApiPages", "page_paths"]

SWAGGER_UI_VERSION = "5.35.0"
HTML = b"text/html; charset=utf-8"
JAVASCRIPT = b"text/javascript; charset=utf-8"
CSS = b"text/css; charset=utf-8"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS: Headers = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]
DOCUMENT_HEADERS: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-cache"),
]
ASSET_HEADERS: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"public, max-age=86400"),
]
# The docs page's assets, below the docs path: URL name -> (package file, content type).
ASSETS = {
    "swagger-ui-bundle.js": ("swagger_ui/swagger-ui-bundle.js", JAVASCRIPT),
    "swagger-ui.css": ("swagger_ui/swagger-ui.css", CSS),
    "docs.js": ("docs.js", JAVASCRIPT),
}
ALLOW = (("Allow", "GET, HEAD"),)


@dataclass(frozen=True, slots=True)
class Page:
    """One answer: its body (per root_path), content type and headers."""

    body: Callable[[str], bytes]
    content_type: bytes
    headers: Headers


def page_paths(openapi_path: str | None, docs_path: str | None) -> list[str]:
    """Every path the gateway answers itself with these options (below its root_path)."""
    paths = [] if openapi_path is None else [openapi_path]
    if docs_path is not None:
        paths += [docs_path, *(f"{docs_path}/{name}" for name in ASSETS)]
    return paths


class ApiPages:
    """The paths of `page_paths`, answered for GET and HEAD (405 for other methods)."""

    def __init__(
        self, document: ApiDocument, openapi_path: str | None, docs_path: str | None
    ) -> None:
        self.document = document
        self.pages: dict[str, Page] = {}
        if openapi_path is not None:
            self.pages[openapi_path] = Page(document.json_bytes, JSON, DOCUMENT_HEADERS)
        if docs_path is not None and openapi_path is not None:
            self._add_docs(docs_path, openapi_path)

    def _add_docs(self, docs_path: str, openapi_path: str) -> None:
        files = importlib.resources.files(__package__)
        template = string.Template(files.joinpath("docs.html").read_text("utf-8"))
        rendered: dict[str, bytes] = {}

        def page(root_path: str) -> bytes:
            body = rendered.get(root_path)
            if body is None:
                root = root_path.rstrip("/")
                urls = {key: f"{root}{docs_path}/{name}" for key, name in _PAGE_ASSETS.items()}
                title = str(self.document.document().get("info", {}).get("title", "API"))
                values = {**urls, "openapi": f"{root}{openapi_path}", "title": title}
                escaped = {key: html.escape(value) for key, value in values.items()}
                body = template.substitute(escaped).encode()
                if len(rendered) < MAX_ROOTS:
                    rendered[root_path] = body
            return body

        self.pages[docs_path] = Page(page, HTML, PAGE_HEADERS)
        for name, (file, content_type) in ASSETS.items():
            data = files.joinpath(file).read_bytes()
            self.pages[f"{docs_path}/{name}"] = Page(_constant(data), content_type, ASSET_HEADERS)

    def __contains__(self, path: str) -> bool:
        return path in self.pages

    async def serve(self, scope: Scope, send: Send, path: str, headers: Headers) -> None:
        """Answer `path` (one of `self.pages`); a method but GET and HEAD is a 405."""
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            raise RpcError(
                Code.UNIMPLEMENTED,
                f"{path} answers GET and HEAD, not {method}",
                http_status=405,
                headers=ALLOW,
            )
        if not self.document.built:  # building it may take a while: not on the event loop
            await asyncio.to_thread(self.document.document)
        page = self.pages[path]
        body = page.body(str(scope.get("root_path", "")))
        length = (b"content-length", b"%d" % len(body))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", page.content_type), *page.headers, *headers, length],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


# The page's template variables naming assets.
_PAGE_ASSETS = {"css": "swagger-ui.css", "bundle": "swagger-ui-bundle.js", "init": "docs.js"}


def _constant(data: bytes) -> Callable[[str], bytes]:
    return lambda root_path: data
