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
from datetime import datetime
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

from protoc_gen_restmon.runtime.admin.app import ASSETS, AdminApp
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
DASH = "\u2013"  # an en dash: the page writes ranges as "1<DASH>50 of 120"
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
        try:
            page.wait_for(LOADED)
        except Exception as error:  # say why: the banner and what went wrong on the page
            raise AssertionError(f"{page.problems()!r}, {page.watched.problems()}") from error
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
    """Every inline script and style is allowed by its hash in the page's CSP, other scripts
    and styles only from the page's own server (uPlot, vendored), and the page refers to
    nothing elsewhere: its only `src`/`href` are the vendored files, by relative URL."""
    html = PAGE_FILE.read_text()
    [policy] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    for tag in ("script", "style"):
        [body] = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert directives[f"{tag}-src"] == f"'self' 'sha256-{digest}'", f"update the <{tag}> hash"
    assert "unsafe" not in policy
    references = re.findall(r"\b(?:src|href)=\"([^\"]*)\"", html)
    assert sorted(references) == sorted(ASSETS)
    assert not re.search(r"<(img|iframe|object)|https?://", html, re.I)


def test_vendored_uplot_is_the_packed_one() -> None:
    """The vendored files are npm's uplot 1.6.32, unchanged (assets/README.md), with its
    license, and they are package data (read through importlib.resources, as AdminApp does)."""
    files = resources.files("protoc_gen_restmon.runtime.admin") / "assets"
    digests = {
        name: hashlib.sha256((files / name).read_bytes()).hexdigest()
        for name in (*ASSETS, "uPlot.LICENSE")
    }
    assert digests == {
        "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
        "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
        "uPlot.LICENSE": "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
    }
    assert (
        (files / "uPlot.iife.min.js")
        .read_text()
        .startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    )
    assert "MIT License" in (files / "uPlot.LICENSE").read_text()


def test_assets_are_served_behind_admin_auth(stack: AdminStack) -> None:
    with stack.admin() as client:
        for name, content_type in ASSETS.items():
            response = client.get(f"{DASHBOARD}{name}")
            assert response.status_code == 200
            assert response.headers["content-type"] == content_type.decode()
            assert response.headers["x-content-type-options"] == "nosniff"
        assert client.get(f"{DASHBOARD}dashboard.html").status_code == 404
        assert client.get(f"{DASHBOARD}..%2Fapp.py").status_code == 404
    assert httpx.get(f"{stack.base}{DASHBOARD}uPlot.iife.min.js").status_code == 401


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
        assert text == f"1{DASH}{count} of {count}"


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
        # A chosen filter is written as text too (names come from protos, but still).
        page.evaluate("p => setFilter({service: p, method: p})", PAYLOAD)
        filter_text = page.evaluate("document.getElementById('filter').textContent")
        assert filter_text == f"{PAYLOAD} / {PAYLOAD}"
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


# --- Charts, filters, live refresh, layouts ---

SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"  # git-ignored
SERIES = "/api/grpc/monitor/timeseries/"
PAGE_STATE = """() => ({
  series: restmon.series, charts: restmon.charts,
  plots: Object.fromEntries(Object.entries(restmon.plots).map(([name, plot]) => [name, plot.data])),
})"""
STATUSES = ["success", "error", "timeout", "cancelled", "pending"]


def epoch_seconds(when: str) -> float:
    return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()


def page_series(page: Dashboard, query: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """The page's state and the endpoint's answer for the same window: the window moves with
    the clock, so when a minute turned between the two, wait for the page's next refresh."""
    for _ in range(5):
        expected = api(page.stack, f"{SERIES}?hours=24{query}")
        state: dict[str, Any] = page.evaluate(PAGE_STATE)
        if state["series"]["since"] == expected["since"]:
            return state, expected
        page.watched.page.wait_for_timeout(1_500)
    raise AssertionError("the page's window never matched the endpoint's")


def assert_charts_show(state: dict[str, Any], expected: dict[str, Any]) -> None:
    """The page drew exactly the endpoint's buckets: counts by status (stacked), error rate
    and latency, at the buckets' start times."""
    assert {**state["series"], "until": None} == {**expected, "until": None}  # until: now
    buckets = expected["buckets"]
    x = [epoch_seconds(b["start"]) for b in buckets]
    by_status = {s: [b["by_status"][s] for b in buckets] for s in STATUSES}
    rates = [
        round(b["failed"] / finished * 100, 1)
        if (finished := b["total"] - b["by_status"]["pending"])
        else None
        for b in buckets
    ]
    latency = {f"p{q}": [b[f"p{q}_ms"] for b in buckets] for q in (50, 95, 99)}
    charts = state["charts"]
    assert charts["requests"] == {"x": x, "series": by_status}
    assert charts["errors"] == {"x": x, "series": {"error %": rates}}
    assert charts["latency"] == {"x": x, "series": latency}
    # What uPlot was given: the stacks (tallest, i.e. the total, first) and the lines.
    requests = state["plots"]["requests"]
    assert requests[0] == x
    assert requests[1] == [b["total"] for b in buckets]
    assert requests[-1] == by_status["success"]
    assert state["plots"]["errors"] == [x, rates]
    assert state["plots"]["latency"] == [x, *latency.values()]


def test_charts_show_the_endpoint_data(browser: Browser, stack: AdminStack) -> None:
    with dashboard(browser, stack, "?refresh=1") as page:
        state, expected = page_series(page)
        assert_charts_show(state, expected)
        buckets = expected["buckets"]
        assert sum(b["total"] for b in buckets) >= 7 and sum(b["failed"] for b in buckets) >= 3
        assert expected["step"] == "hour" and len(buckets) == 25
        assert page.evaluate("document.querySelectorAll('.plot canvas').length") == 3
        assert page.watched.problems() == {kind: [] for kind in page.watched.problems()}


def test_top_methods_come_from_the_methods_endpoint(browser: Browser, stack: AdminStack) -> None:
    with dashboard(browser, stack, "?refresh=600") as page:
        methods = api(stack, "/api/grpc/monitor/methods/")["methods"]
        for table, field in (("top-errors", "failed_requests"), ("top-p95", "p95_ms")):
            ranked = sorted((m for m in methods if m[field] > 0), key=lambda m: -m[field])[:5]
            rows = page.rows(table)
            assert [(r["method_name"], r[field]) for r in rows] == [
                (m["method_name"], shown(m[field])) for m in ranked
            ]
            assert rows


def test_selecting_a_method_filters_the_charts(browser: Browser, stack: AdminStack) -> None:
    with dashboard(browser, stack, "?refresh=600") as page:
        service = "bookstore.v1.BookstoreService"
        page.watched.page.locator("#methods tbody tr", has_text="GetShelf").first.click()
        page.wait_for("() => restmon.series && restmon.series.method === 'GetShelf'")
        state, expected = page_series(page, f"&service={service}&method=GetShelf")
        assert_charts_show(state, expected)
        assert sum(b["by_status"]["timeout"] for b in expected["buckets"]) >= 1
        filter_text = page.evaluate("document.getElementById('filter').textContent")
        assert filter_text == f"{service} / GetShelf"
        page.wait_for(
            """() => [...document.querySelectorAll('#requests td[data-key=method_name]')]
                .every(td => td.textContent === 'GetShelf')"""
        )
        page.watched.page.click("#clear-filter")
        page.wait_for("() => restmon.series.method === null && restmon.series.service === null")
        assert page.evaluate("document.getElementById('filter').textContent") == "all calls"


def test_charts_refresh_without_reload(browser: Browser, stack: AdminStack) -> None:
    total = "() => restmon.series.buckets.reduce((n, b) => n + b.total, 0)"
    with dashboard(browser, stack, "?refresh=1") as page:
        page.evaluate("() => { window.__sameDocument = true; }")
        before = page.evaluate(total)
        with stack.client() as client:
            assert client.get("/v1/shelves/fiction").status_code == 200
        stack.flush()
        page.wait_for(f"() => ({total})() === {before + 1}")
        assert page.evaluate("() => window.__sameDocument") is True
        state, expected = page_series(page)
        assert_charts_show(state, expected)


def test_pause_stops_the_refresh(browser: Browser, stack: AdminStack) -> None:
    with dashboard(browser, stack, "?refresh=1") as page:
        seen: list[str] = []
        page.watched.page.on("request", lambda request: seen.append(request.url))
        page.watched.page.click("#pause")
        page.wait_for(PROBLEMS_OR_NOTICE, "Paused")
        page.watched.page.wait_for_timeout(1_500)  # a refresh still running may finish
        seen.clear()
        page.watched.page.wait_for_timeout(2_500)
        assert seen == []
        page.watched.page.click("#pause")
        page.wait_for("() => document.getElementById('notices').textContent === ''")
        page.watched.page.wait_for_timeout(1_500)
        assert any(SERIES in url for url in seen)


PROBLEMS_OR_NOTICE = "text => document.getElementById('notices').textContent.includes(text)"


def test_stale_data_is_said_and_clears_up(
    browser: Browser, stack: AdminStack, db_path: Path
) -> None:
    with dashboard(browser, stack, "?refresh=1") as page:
        rename_table(db_path, "call_rollups_hour", "call_rollups_hour_away")
        try:
            page.wait_for(PROBLEMS_INCLUDE, "timeseries/?hours=24: HTTP 503")
            page.wait_for(PROBLEMS_OR_NOTICE, "The data is stale")
        finally:
            rename_table(db_path, "call_rollups_hour_away", "call_rollups_hour")
        page.wait_for("() => document.getElementById('notices').textContent === ''")
        page.wait_for(NO_PROBLEMS)


def test_degraded_store_is_said(browser: Browser, stack: AdminStack) -> None:
    """The notice follows the health answer's status (a degraded writer is tested in
    tests/test_monitor_faults.py; here the answer is replaced)."""
    with dashboard(browser, stack, "?refresh=600") as page:
        page.evaluate(
            """() => { restmon.health = {status: "degraded", store_ok: false, dropped: 3,
                       lost: 2}; showNotices(); }"""
        )
        notice = page.evaluate("document.getElementById('notices').textContent")
        assert notice == "The monitor is degraded: store ok false, 3 records dropped, 2 lost."


def test_requests_are_paginated(browser: Browser, stack: AdminStack) -> None:
    with dashboard(browser, stack, "?refresh=600&rows=3") as page:
        count = api(stack, "/api/grpc/monitor/requests/")["count"]
        assert count > 6
        counter = "document.getElementById('requests-count').textContent"
        assert page.evaluate(counter) == f"1{DASH}3 of {count}"
        first = page.rows("requests")
        page.watched.page.click("#older")
        page.wait_for(f"() => {counter} === '4{DASH}6 of {count}'")
        page.assert_table("requests", "&offset=3&limit=3")
        assert page.rows("requests") != first
        page.watched.page.click("#newer")
        page.wait_for(f"() => {counter} === '1{DASH}3 of {count}'")
        assert page.evaluate("document.getElementById('newer').disabled") is True


def test_no_request_leaves_the_server(browser: Browser, stack: AdminStack) -> None:
    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    seen: list[str] = []
    try:
        context.on("request", lambda request: seen.append(request.url))
        page = Dashboard(stack, Watched.open(context.new_page()))
        page.watched.page.goto(f"{stack.base}{DASHBOARD}?refresh=1")
        page.wait_for(LOADED)
        page.watched.page.locator("#methods tbody tr").first.click()
        page.watched.page.wait_for_timeout(1_500)
    finally:
        context.close()
    assert {f"{stack.base}{DASHBOARD}{name}" for name in ASSETS} <= set(seen)
    assert any(SERIES in url for url in seen)
    assert [url for url in seen if not url.startswith(f"{stack.base}/api/grpc/")] == []


LAYOUTS = {
    "laptop-light": ({"width": 1280, "height": 800}, "light"),
    "laptop-dark": ({"width": 1280, "height": 800}, "dark"),
    "phone-light": ({"width": 390, "height": 844}, "light"),
    "phone-dark": ({"width": 390, "height": 844}, "dark"),
}
LAYOUT = """() => ({
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  background: getComputedStyle(document.body).backgroundColor,
  colour: getComputedStyle(document.body).color,
  widest_chart: Math.max(...[...document.querySelectorAll('.plot canvas')].map(
    c => c.getBoundingClientRect().right)),
})"""


def luminance(css: str) -> float:
    red, green, blue = (int(v) for v in re.findall(r"\d+", css)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_render_without_overflow(browser: Browser, stack: AdminStack, layout: str) -> None:
    """Phone and laptop widths, light and dark schemes: nothing wider than the window, text
    readable on the background, no errors. Writes build/screenshots/dashboard-<layout>.png."""
    viewport, scheme = LAYOUTS[layout]
    context = browser.new_context(
        http_credentials={"username": USER, "password": PASSWORD},
        viewport=viewport,  # type: ignore[arg-type]
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    try:
        watched = Watched.open(context.new_page())
        watched.page.goto(f"{stack.base}{DASHBOARD}?refresh=600")
        watched.page.wait_for_function(LOADED, timeout=WAIT_MS)
        watched.page.wait_for_function("() => restmon.series !== null", timeout=WAIT_MS)
        measured = watched.page.evaluate(LAYOUT)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        watched.page.screenshot(path=SCREENSHOTS / f"dashboard-{layout}.png", full_page=True)
        assert measured["overflow"] <= 0, measured
        assert measured["widest_chart"] <= viewport["width"], measured
        dark = scheme == "dark"
        assert (luminance(measured["background"]) < 0.2) is dark, measured
        assert abs(luminance(measured["colour"]) - luminance(measured["background"])) > 0.6
        assert watched.problems() == {kind: [] for kind in watched.problems()}
    finally:
        context.close()
