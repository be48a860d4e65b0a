"""The gateway's docs page (Swagger UI) in a real headless Chromium, served by uvicorn.

The page must load with every request going to the gateway itself (all recorded), no CSP
violation (its CSP allows no inline script and no eval), no console error; it must list every
operation of the example bookstore's document, and "Try it out" + "Execute" on a GET must show
the gateway's own answer. It runs mounted below /rest (a Starlette Mount), where every URL the
page uses has to follow the mount point.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.gateway.app import Gateway
from tests.support.browser import Watched
from tests.support.servers import uvicorn_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.timeout(90)

MOUNT = "/rest"
WAIT_MS = 20_000
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Swagger UI's operations as (METHOD, path), once it has rendered them.
OPERATIONS = """() => [...document.querySelectorAll('.opblock')].map(block => [
  block.querySelector('.opblock-summary-method').textContent,
  block.querySelector('.opblock-summary-path').dataset.path])"""
RENDERED = "() => document.querySelectorAll('.opblock').length > 0"
# Every CSP violation, recorded before the page's own scripts run.
RECORD_VIOLATIONS = """window.__violations = [];
document.addEventListener('securitypolicyviolation',
  event => window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`));"""


@pytest.fixture(scope="module", name="gateway")
def fixture_gateway(bookstore_pb: ModuleType) -> Gateway:
    return Gateway(services=[make_service(bookstore_pb)])


@pytest.fixture(scope="module", name="base")
def fixture_base(gateway: Gateway) -> Iterator[str]:
    with uvicorn_server(Starlette(routes=[Mount(MOUNT, app=gateway)])) as base:
        yield base


@pytest.fixture(scope="module", name="document")
def fixture_document(base: str) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{base}{MOUNT}/openapi.json").json()
    return document


@pytest.fixture(scope="module", name="docs")
def fixture_docs(browser: Browser, base: str) -> Iterator[tuple[Watched, list[str]]]:
    """The docs page, loaded and rendered once for the module (Swagger UI's bundle is 1.7 MB:
    each load costs seconds on a busy machine); every URL it requested."""
    context = browser.new_context()
    try:
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.add_init_script(RECORD_VIOLATIONS)
        watched = Watched.open(page)
        page.goto(f"{base}{MOUNT}/docs")
        page.wait_for_function(RENDERED, timeout=WAIT_MS)
        yield watched, requested
    finally:
        context.close()


def expected_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    )


def test_page_requests_only_the_gateway(docs: tuple[Watched, list[str]], base: str) -> None:
    watched, requested = docs
    origin = urllib.parse.urlsplit(base).netloc
    assert {urllib.parse.urlsplit(url).netloc for url in requested} == {origin}, requested
    paths = {urllib.parse.urlsplit(url).path for url in requested}
    assert {f"{MOUNT}/docs", f"{MOUNT}/openapi.json", f"{MOUNT}/docs/docs.js"} <= paths
    assert watched.evaluate("() => window.__violations") == []
    assert watched.problems() == {
        "console errors": [],
        "page errors": [],
        "failed requests": [],
        "error responses": [],
    }


def test_page_lists_every_operation(
    docs: tuple[Watched, list[str]], document: dict[str, Any], gateway: Gateway
) -> None:
    watched, _ = docs
    shown = sorted((method.upper(), path) for method, path in watched.evaluate(OPERATIONS))
    assert shown == expected_operations(document)
    # One operation per binding, additional bindings included (none has a custom method).
    assert len(shown) == len(gateway.api.bindings)


def test_try_it_out_shows_the_gateways_answer(docs: tuple[Watched, list[str]], base: str) -> None:
    watched, requested = docs
    page = watched.page
    block = page.locator(".opblock-get", has=page.locator('[data-path="/v1/shelves"]')).first
    block.locator(".opblock-summary").click()
    block.locator(".try-out__btn").click()
    block.locator(".execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=WAIT_MS)
    assert status.text_content().strip() == "200"
    body = block.locator(".live-responses-table .microlight").first.text_content()
    expected = httpx.get(f"{base}{MOUNT}/v1/shelves").json()
    assert '"shelves"' in body
    for shelf in expected["shelves"]:
        assert shelf["name"] in body
    assert f"{base}{MOUNT}/v1/shelves" in requested  # the mount point kept
    assert watched.problems()["error responses"] == []
