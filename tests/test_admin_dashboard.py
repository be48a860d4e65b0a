"""The admin dashboard in a real headless Chromium, against the real admin API.

One stack for the module: a Monitor on SQLite, a grpclib server with it attached and uvicorn
serving `with_admin(Gateway, AdminApp)`. Calls over REST and gRPC record successes, errors, a
timeout, a key's use and client-controlled text (an HTML payload in an error message, a request
id, a user agent, a label, an API key's name and user). The page must show the API's numbers,
filter by status, refresh by itself, report 401 and 5xx answers, and show every payload as
text, never as HTML. The page logs in with HTTP Basic (the browser context's credentials).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from grpclib import GRPCError, Status
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.admin.app import AdminApp
from protoc_gen_restmon.runtime.admin.auth import create_admin_token
from protoc_gen_restmon.runtime.admin.mount import with_admin
from protoc_gen_restmon.runtime.gateway.app import Gateway
from protoc_gen_restmon.runtime.monitor.keys import create_api_key, hash_password
from protoc_gen_restmon.runtime.monitor.model import KeyType
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from tests.support.admin_fixtures import KEYED_METHOD, AdminStack, serving
from tests.support.browser import Watched
from tests.support.gateway_fixtures import make_test_service

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.timeout(60)

USER, PASSWORD = "admin", "dashboard password"
PAYLOAD = "<img src=x onerror=window.__xss=1>"
DASHBOARD = "/api/grpc/monitor/dashboard/"
PAGE_FILE = resources.files("protoc_gen_restmon.runtime.admin") / "dashboard.html"
WAIT_MS = 10_000
# The page's tables by element id, and where their rows are in the API's answers.
TABLES = {
    "services": ("/api/grpc/monitor/services/", "services"),
    "methods": ("/api/grpc/monitor/methods/", "methods"),
    "requests": ("/api/grpc/monitor/requests/?limit=50", "results"),
    "keys": ("/api/grpc/api-keys/", "results"),
}
# Page functions, not expressions: playwright evaluates a string expression with eval(), which
# the page's CSP forbids.
LOADED = "() => document.getElementById('updated').textContent !== 'never'"
PROBLEMS_INCLUDE = "text => document.getElementById('problems').textContent.includes(text)"
NO_PROBLEMS = "() => document.getElementById('problems').textContent === ''"
ROWS = """id => [...document.querySelectorAll(`#${id} tbody tr`)].map(tr =>
  Object.fromEntries([...tr.cells].map(td => [td.dataset.key, td.textContent])))"""
CARDS = """id => Object.fromEntries([...document.querySelectorAll(`#${id} b`)].map(
  b => [b.dataset.key, b.textContent]))"""


def shown(value: Any) -> str:
    """A JSON value as the page writes it (its `text()`, JavaScript's `String()`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        # Sorted as JavaScript compares strings: by UTF-16 code units.
        items = sorted(value.items(), key=lambda item: item[0].encode("utf-16-be"))
        return ", ".join(f"{k}={v}" for k, v in items)
    if isinstance(value, float):
        # JavaScript's toFixed(1): the float's exact decimal value, halves rounded up.
        rounded = Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        return str(rounded).removesuffix(".0")
    return str(value)


@pytest.fixture(scope="module", name="db_path")
def fixture_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dashboard") / "restmon.db"


@pytest.fixture(scope="module", name="stack")
def fixture_stack(bookstore_pb: ModuleType, db_path: Path) -> Iterator[AdminStack]:
    generated = importlib.import_module(f"{bookstore_pb.__name__}._restmon_monitor")
    monitor_class: type = generated.BookstoreServiceMonitor

    class Tenants(monitor_class):  # type: ignore[misc]
        def get_shelf(self, call: Any) -> None:
            call.labels["tenant"] = call.info.get("x-tenant") or "none"

    monitor = Monitor(
        f"sqlite:///{db_path}",
        packages=[bookstore_pb],
        require_keys=[KEYED_METHOD],
        hooks=[Tenants()],
    )
    store = monitor.store
    store.set_admin_password(USER, hash_password(PASSWORD))
    _, token = create_admin_token(store, "dashboard tests")
    key, api_key = create_api_key(
        store, f"Analytics {PAYLOAD}", KeyType.SERVICE, user_id=7, username=PAYLOAD
    )
    service = make_test_service(bookstore_pb)
    app = with_admin(Gateway(services=[service], monitor=monitor), AdminApp(monitor))
    try:
        with serving(monitor, service, app) as (base, grpc_port):
            stack = AdminStack(
                base, grpc_port, monitor, bookstore_pb, db_path, token, api_key, key.id
            )
            record_calls(stack)
            yield stack
    finally:
        monitor.close()


def record_calls(stack: AdminStack) -> None:
    """Successes, errors and a timeout over REST and gRPC, with the payload in client fields."""
    with stack.client() as client:
        for _ in range(3):
            assert client.get("/v1/shelves/fiction").status_code == 200
        headers = {"user-agent": PAYLOAD, "x-request-id": PAYLOAD, "x-tenant": PAYLOAD}
        missing = f"/v1/shelves/{urllib.parse.quote(PAYLOAD, safe='')}"
        assert client.get(missing, headers=headers).status_code == 404
    pb = stack.pb

    async def calls(stub: Any) -> list[Status]:
        await stub.list_genres(pb.ListGenresRequest(), metadata={"x-api-key": stack.api_key})
        failures = []
        for call in (
            stub.list_genres(pb.ListGenresRequest()),  # no API key
            stub.get_shelf(pb.GetShelfRequest(shelf="fail-4")),  # DEADLINE_EXCEEDED
        ):
            try:
                await call
            except GRPCError as error:
                failures.append(error.status)
        return failures

    # In a thread: the browser's event loop runs in this one (see tests/support/browser.py).
    with ThreadPoolExecutor(1) as thread:
        failures = thread.submit(stack.grpc, calls).result()
    assert failures == [Status.UNAUTHENTICATED, Status.DEADLINE_EXCEEDED]
    stack.flush()


def api(stack: AdminStack, path: str) -> Any:
    """An admin API answer, read with the bearer token (the page uses Basic)."""
    with stack.admin() as client:
        response = client.get(path)
    response.raise_for_status()
    return response.json()


@dataclass
class Dashboard:
    """The page in a browser and the stack it reads."""

    stack: AdminStack
    watched: Watched

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.watched.page.evaluate(script, arg)

    def wait_for(self, script: str, arg: Any = None) -> None:
        self.watched.page.wait_for_function(script, arg=arg, timeout=WAIT_MS)

    def rows(self, table: str) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = self.evaluate(ROWS, table)
        return rows

    def cards(self, container: str) -> dict[str, str]:
        cards: dict[str, str] = self.evaluate(CARDS, container)
        return cards

    def problems(self) -> str:
        text: str = self.evaluate("document.getElementById('problems').textContent")
        return text

    def expected_rows(self, table: str, query: str = "") -> list[dict[str, str]]:
        path, field = TABLES[table]
        rows = api(self.stack, f"{path}{query}")[field]
        return [{key: shown(value) for key, value in row.items()} for row in rows]

    def assert_table(self, table: str, query: str = "") -> list[dict[str, str]]:
        """The table shows exactly the API's rows, in its order, in the page's columns."""
        rows = self.rows(table)
        assert rows, f"#{table} is empty"
        columns = rows[0].keys()
        expected = self.expected_rows(table, query)
        assert rows == [{key: row[key] for key in columns} for row in expected]
        return rows


@contextlib.contextmanager
def dashboard(browser: Browser, stack: AdminStack, query: str = "") -> Iterator[Dashboard]:
    """The page in a fresh browser context, logged in with Basic, loaded."""
    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    try:
        page = Dashboard(stack, Watched.open(context.new_page()))
        page.watched.page.goto(f"{stack.base}{DASHBOARD}{query}")
        page.wait_for(LOADED)
        yield page
    finally:
        context.close()


# --- Tests ---


def test_without_credentials_the_page_is_not_served(browser: Browser, stack: AdminStack) -> None:
    response = httpx.get(f"{stack.base}{DASHBOARD}")
    assert response.status_code == 401
    assert "basic" in response.headers["www-authenticate"].lower()
    assert "<script" not in response.text
    assert httpx.get(f"{stack.base}{DASHBOARD}", auth=(USER, "wrong")).status_code == 401
    from playwright.sync_api import Error as PlaywrightError  # (the fixture checked it exists)

    context = browser.new_context()
    try:
        watched = Watched.open(context.new_page())
        # Headless Chromium gives up on a Basic challenge it has no credentials for.
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            watched.page.goto(f"{stack.base}{DASHBOARD}")
        assert watched.error_responses == [f"{stack.base}{DASHBOARD}: 401"]
    finally:
        context.close()


def test_page_is_self_contained_with_a_strict_csp() -> None:
    """Every inline script and style is allowed by its hash in the page's CSP, and the page
    refers to nothing elsewhere."""
    html = PAGE_FILE.read_text()
    [policy] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    for tag in ("script", "style"):
        [body] = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert directives[f"{tag}-src"] == f"'sha256-{digest}'", f"update the <{tag}> hash"
    assert not re.search(r"<(link|img|iframe|object)|\bsrc=|https?://", html, re.I)


def test_page_shows_the_api_numbers(browser: Browser, stack: AdminStack) -> None:
    with dashboard(browser, stack) as page:
        overview = api(stack, "/api/grpc/monitor/overview/")
        assert page.cards("overview") == {k: shown(v) for k, v in overview.items()}
        assert overview["total_requests"] == 7 and overview["failed_requests"] == 3
        health = api(stack, "/api/grpc/monitor/health/")
        shown_health = page.cards("health")
        assert float(shown_health.pop("uptime_seconds")) > 0
        del health["uptime_seconds"]
        assert shown_health == {k: shown(v) for k, v in health.items()}
        stats = api(stack, "/api/grpc/api-keys/stats/")
        by_type = {f"keys_by_type.{t}": shown(n) for t, n in stats.pop("keys_by_type").items()}
        assert page.cards("key-stats") == {**{k: shown(v) for k, v in stats.items()}, **by_type}
        for table in TABLES:
            page.assert_table(table)
        methods = page.rows("methods")
        assert {"p50_ms", "p95_ms", "p99_ms"} <= methods[0].keys()
        assert page.problems() == ""
        assert page.watched.problems() == {kind: [] for kind in page.watched.problems()}


@pytest.mark.parametrize("status", ["error", "timeout", "success", ""])
def test_status_filter_shows_the_api_rows(browser: Browser, stack: AdminStack, status: str) -> None:
    with dashboard(browser, stack) as page:
        page.watched.page.select_option("#status-filter", status)
        count = api(stack, f"/api/grpc/monitor/requests/?status={status}")["count"]
        assert count > 0
        page.wait_for(
            """([status, count]) => {
              const cells = [...document.querySelectorAll("#requests td[data-key=status]")];
              const shown = cells.every(c => !status || c.textContent === status);
              return cells.length === count && shown;
            }""",
            [status, count],
        )
        page.assert_table("requests", f"&status={status}")
        text = page.evaluate("document.getElementById('requests-count').textContent")
        assert text == f"{count} shown of {count}"


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    # The API's numbers: durations, rates, uptimes (none negative, none astronomically large).
    st.floats(0, 1e12),
    st.text(st.characters(exclude_categories=["Cs"])),
    st.dictionaries(
        st.text(st.sampled_from("ab1\u00e9\uff01\U0001f600"), max_size=3),
        st.text(max_size=5),
        max_size=4,
    ),
)


def test_shown_is_what_the_page_writes(browser: Browser, stack: AdminStack) -> None:
    """`shown` (the tests' expectation) writes values exactly as the page's own `text()`."""
    with dashboard(browser, stack, "?refresh=600") as page:

        @settings(max_examples=200, deadline=None)
        @given(st.lists(JSON_VALUES, max_size=20))
        def check(values: list[Any]) -> None:
            assert page.evaluate("values => values.map(text)", values) == [shown(v) for v in values]

        check()


def test_client_text_is_shown_as_text_and_never_runs(browser: Browser, stack: AdminStack) -> None:
    with dashboard(browser, stack) as page:
        [failed] = [r for r in page.rows("requests") if r["request_id"] == PAYLOAD]
        assert failed["user_agent"] == PAYLOAD
        assert failed["labels"] == f"tenant={PAYLOAD}"
        assert PAYLOAD in failed["error_message"]
        [keyed] = [r for r in page.rows("requests") if r["api_key_name"]]
        assert keyed["api_key_name"] == f"Analytics {PAYLOAD}"
        [key] = page.rows("keys")
        assert (key["name"], key["username"]) == (f"Analytics {PAYLOAD}", PAYLOAD)
        assert page.evaluate("window.__xss") is None
        assert page.evaluate("document.querySelectorAll('img, [onerror]').length") == 0
        assert page.watched.page.get_by_text(PAYLOAD, exact=True).first.is_visible()


def test_page_refreshes_by_itself(browser: Browser, stack: AdminStack) -> None:
    with dashboard(browser, stack, "?refresh=1") as page:
        before = int(page.cards("overview")["total_requests"])
        with stack.client() as client:
            assert client.get("/v1/shelves/fiction").status_code == 200
        stack.flush()
        page.wait_for(
            "n => document.querySelector('#overview b[data-key=total_requests]').textContent == n",
            str(before + 1),
        )
        assert page.watched.problems() == {kind: [] for kind in page.watched.problems()}


def test_refused_credentials_show_a_login_prompt(browser: Browser, stack: AdminStack) -> None:
    # No refresh by timer during the test: the filter's change loads, the button reloads.
    with dashboard(browser, stack, "?refresh=600") as page:
        rows = page.rows("requests")
        stack.monitor.store.set_admin_password(USER, hash_password("changed"))
        try:
            page.watched.page.select_option("#status-filter", "error")
            page.wait_for(PROBLEMS_INCLUDE, "HTTP 401")
            assert "Not authorized" in page.problems()
            assert page.rows("requests") == rows  # the last answers stay on the page
        finally:
            stack.monitor.store.set_admin_password(USER, hash_password(PASSWORD))
        with page.watched.page.expect_navigation():
            page.watched.page.get_by_role("button", name="Log in again").click()
        page.wait_for(LOADED)
        assert page.problems() == ""


def test_server_errors_are_shown_and_clear_up(
    browser: Browser, stack: AdminStack, db_path: Path
) -> None:
    with dashboard(browser, stack, "?refresh=1") as page:
        rows = page.rows("requests")
        rename_table(db_path, "api_keys", "api_keys_away")  # the key queries now fail
        try:
            # Each section reports its own failure as its answer comes in: wait for this one.
            page.wait_for(PROBLEMS_INCLUDE, "api-keys/stats/: HTTP 503")
            assert page.rows("requests") == rows  # the other sections still load
        finally:
            rename_table(db_path, "api_keys_away", "api_keys")
        page.wait_for(NO_PROBLEMS)
        assert page.watched.page_errors == []


def rename_table(db_path: Path, old: str, new: str) -> None:
    with contextlib.closing(sqlite3.connect(db_path)) as connection:
        connection.execute(f"ALTER TABLE {old} RENAME TO {new}")
        connection.commit()
