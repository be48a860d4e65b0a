"""The gateway serves its OpenAPI document and its docs page: `GET /openapi.json`, `/docs`.

Over real HTTP (uvicorn, httpx): the document is `build_document` of the gateway's own files and
bindings, built once, with `servers` naming the mount point (uvicorn's root_path, a Starlette
`Mount`, a FastAPI `app.mount`); the docs page's URLs follow the mount point too. The paths can
be renamed or turned off, and a path an API route matches is refused when the gateway is built.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.apidocs import ApiDocument, gateway_files
from protoc_gen_restmon.runtime.apidocs.pages import CSP
from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions
from protoc_gen_restmon.runtime.jsoncodec.options import JsonOptions
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from protoc_gen_restmon.runtime.openapi import ApiInfo, build_document
from tests.support.gateway_fixtures import call
from tests.support.servers import uvicorn_server

pytestmark = pytest.mark.timeout(60)

SERVICE = "bookstore.v1.BookstoreService"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js")


def monitor_module(pb: ModuleType) -> ModuleType:
    return importlib.import_module(f"{pb.__name__}._restmon_monitor")


def gateway(pb: ModuleType, **options: Any) -> Gateway:
    return Gateway(services=[make_service(pb)], options=GatewayOptions(**options))


@pytest.fixture(scope="module", name="served")
def fixture_served(bookstore_pb: ModuleType) -> Iterator[tuple[Gateway, str]]:
    app = gateway(bookstore_pb)
    with uvicorn_server(app) as base:
        yield app, base


def page_urls(page: str) -> list[str]:
    """The URLs the docs page loads (its stylesheet, scripts) and the document it shows; its
    icon is an empty data: URL (no /favicon.ico request outside the mount point)."""
    urls = re.findall(r'(?:href|src|data-openapi-url)="([^"]+)"', page)
    assert urls.count("data:,") == 1, urls
    return [url for url in urls if url != "data:,"]


# --- The document ---


def test_document_is_the_builders_for_the_gateways_files_and_bindings(
    served: tuple[Gateway, str], bookstore_pb: ModuleType
) -> None:
    _, base = served
    answer = httpx.get(f"{base}/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    document = answer.json()
    expected = build_document(
        gateway_files([monitor_module(bookstore_pb)]),
        importlib.import_module(f"{bookstore_pb.__name__}._restmon_routes").BINDINGS,
        info=ApiInfo(),
    )
    assert document.pop("servers") == [{"url": "/"}]
    assert document == expected
    assert document["openapi"] == "3.1.0"


def test_document_is_built_once(bookstore_pb: ModuleType) -> None:
    app = gateway(bookstore_pb)
    assert not app.api.built  # not when the gateway is built: on first use
    first = call(app, "GET", "/openapi.json")
    assert app.api.built
    built = app.api.document()
    second = call(app, "GET", "/openapi.json")
    assert app.api.document() is built
    assert first.status == second.status == 200
    assert first.body == second.body


def test_gateway_files_hold_comments_and_come_dependencies_first(
    bookstore_pb: ModuleType,
) -> None:
    files = gateway_files([monitor_module(bookstore_pb)])
    names = [file.name for file in files]
    assert len(names) == len(set(names))
    for index, file in enumerate(files):
        assert set(file.dependency) <= set(names[:index]), file.name
    bookstore = files[names.index("bookstore/v1/bookstore.proto")]
    comments = [loc.leading_comments for loc in bookstore.source_code_info.location]
    assert any("custom verb" in comment for comment in comments)
    assert "google/api/annotations.proto" in names


def test_document_follows_the_gateways_options(bookstore_pb: ModuleType) -> None:
    json_options = JsonOptions(use_proto_names=True)
    info = ApiInfo(title="Bookstore", version="1.2.3")
    app = gateway(bookstore_pb, json=json_options, error_format="google", openapi_info=info)
    assert (app.api.json_options, app.api.error_format) == (json_options, "google")
    expected = build_document(
        gateway_files([monitor_module(bookstore_pb)]),
        app.api.bindings,
        info=info,
        json_options=json_options,
        error_format="google",
    )
    served = call(app, "GET", "/openapi.json").json()
    served.pop("servers")
    assert served == expected
    assert served["info"]["title"] == "Bookstore"


def test_api_key_services_come_from_the_monitor(bookstore_pb: ModuleType, tmp_path: Path) -> None:
    with_keys = Monitor(f"sqlite:///{tmp_path / 'keys.db'}", require_keys=[SERVICE])
    without = Monitor(f"sqlite:///{tmp_path / 'none.db'}", require_keys=[f"/{SERVICE}/GetBook"])
    try:
        keyed = Gateway(services=[make_service(bookstore_pb)], monitor=with_keys)
        one_method = Gateway(services=[make_service(bookstore_pb)], monitor=without)
        assert keyed.api.api_key_services == frozenset({SERVICE})
        # The builder takes services: a key on one method only is not a whole service's.
        assert one_method.api.api_key_services == frozenset()
    finally:
        with_keys.close()
        without.close()


def test_head_answers_headers_only_and_other_methods_405(served: tuple[Gateway, str]) -> None:
    _, base = served
    got = httpx.get(f"{base}/openapi.json")
    head = httpx.head(f"{base}/openapi.json")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    post = httpx.post(f"{base}/openapi.json", json={})
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"
    assert post.json()["code"] == 12  # UNIMPLEMENTED, as the router's own 405s
    assert "x-request-id" in post.headers


# --- The docs page ---


def test_docs_page_loads_only_its_own_assets(served: tuple[Gateway, str]) -> None:
    _, base = served
    page = httpx.get(f"{base}/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text and "<style" not in page.text  # nothing inline
    urls = page_urls(page.text)
    assert sorted(urls) == sorted(["/openapi.json", *(f"/docs/{name}" for name in ASSETS)])
    for url in urls:
        answer = httpx.get(f"{base}{url}")
        assert answer.status_code == 200, url
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_docs_assets_are_the_vendored_swagger_ui(served: tuple[Gateway, str]) -> None:
    _, base = served
    bundle = httpx.get(f"{base}/docs/swagger-ui-bundle.js")
    assert bundle.headers["content-type"] == "text/javascript; charset=utf-8"
    assert b"SwaggerUIBundle" in bundle.content
    assert len(bundle.content) > 1_000_000
    css = httpx.get(f"{base}/docs/swagger-ui.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    init = httpx.get(f"{base}/docs/docs.js").text
    assert 'validatorUrl: "none"' in init


# --- Mount points ---


def test_root_path_names_the_server_and_the_pages_urls(bookstore_pb: ModuleType) -> None:
    # uvicorn --root-path: a reverse proxy strips /api before forwarding, so the requests
    # below reach uvicorn without it; the URLs the page names are those behind the proxy.
    with uvicorn_server(gateway(bookstore_pb), root_path="/api") as base:
        document = httpx.get(f"{base}/openapi.json").json()
        assert document["servers"] == [{"url": "/api"}]
        page = httpx.get(f"{base}/docs").text
        for url in page_urls(page):
            assert url.startswith("/api/"), url
            assert httpx.get(f"{base}{url.removeprefix('/api')}").status_code == 200, url
        assert httpx.get(f"{base}/v1/shelves").status_code == 200


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_mounted_gateway_serves_them_below_its_mount(
    bookstore_pb: ModuleType, framework: str
) -> None:
    app = gateway(bookstore_pb)
    outer: Any
    if framework == "starlette":
        outer = Starlette(routes=[Mount("/rest", app=app)])
    else:
        outer = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        outer.mount("/rest", app)
    with uvicorn_server(outer) as base:
        document = httpx.get(f"{base}/rest/openapi.json").json()
        assert document["servers"] == [{"url": "/rest"}]
        for url in page_urls(httpx.get(f"{base}/rest/docs").text):
            assert url.startswith("/rest/"), url
            assert httpx.get(f"{base}{url}").status_code == 200, url
        assert httpx.get(f"{base}/rest/v1/shelves").status_code == 200
        assert httpx.get(f"{base}/openapi.json").status_code == 404


# --- Options ---


def test_renamed_paths_are_served_and_the_defaults_are_not(bookstore_pb: ModuleType) -> None:
    app = gateway(bookstore_pb, openapi_path="/spec/v1.json", docs_path="/reference")
    assert call(app, "GET", "/spec/v1.json").json()["openapi"] == "3.1.0"
    page = call(app, "GET", "/reference")
    assert page.status == 200
    assert set(page_urls(page.body.decode())) == {
        "/spec/v1.json",
        *(f"/reference/{name}" for name in ASSETS),
    }
    for path in ("/openapi.json", "/docs", "/docs/docs.js"):
        assert call(app, "GET", path).status == 404, path


def test_turned_off_paths_are_404s(bookstore_pb: ModuleType) -> None:
    app = gateway(bookstore_pb, openapi_path=None, docs_path=None)
    for path in ("/openapi.json", "/docs", "/docs/swagger-ui-bundle.js"):
        assert call(app, "GET", path).status == 404, path
    docs_off = gateway(bookstore_pb, docs_path=None)
    assert call(docs_off, "GET", "/openapi.json").status == 200
    assert call(docs_off, "GET", "/docs").status == 404


CLASHES = [
    pytest.param({"openapi_path": "/v1/shelves"}, "GET /v1/shelves", id="document-on-a-route"),
    pytest.param(
        {"docs_path": "/v1/shelves/fiction"}, "GET /v1/shelves/{shelf}", id="docs-on-a-variable"
    ),
    pytest.param({"docs_path": "/v1/authors"}, "GET /v1/{name=authors/*}", id="docs-asset"),
    pytest.param({"openapi_path": "/v1/books:import"}, "POST", id="another-method"),
]


@pytest.mark.parametrize(("options", "fragment"), CLASHES)
def test_a_path_of_an_api_route_is_refused(
    bookstore_pb: ModuleType, options: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        gateway(bookstore_pb, **options)
    message = str(raised.value)
    assert fragment in message
    assert "openapi_path, docs_path" in message
    assert next(iter(options.values())) in message


BAD_PATHS = [
    pytest.param({"openapi_path": "openapi.json"}, "openapi_path", id="relative"),
    pytest.param({"docs_path": "/docs/"}, "docs_path", id="trailing-slash"),
    pytest.param({"docs_path": "/"}, "docs_path", id="root"),
    pytest.param({"openapi_path": "/x?y=1"}, "openapi_path", id="query"),
    pytest.param({"openapi_path": None}, "give openapi_path too", id="docs-without-document"),
]


@pytest.mark.parametrize(("options", "fragment"), BAD_PATHS)
def test_bad_page_options_are_config_errors(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        GatewayOptions(**options)


def test_pages_are_answered_in_proxy_mode_without_calling_upstream(
    bookstore_pb: ModuleType,
) -> None:
    # Nothing listens on the upstream: the document comes from the generated modules alone.
    app = Gateway(upstream="127.0.0.1:9", packages=[bookstore_pb])
    assert call(app, "GET", "/openapi.json").status == 200
    assert call(app, "GET", "/docs").status == 200
    assert isinstance(app.api, ApiDocument)
