"""The monitoring and API key endpoints over real HTTP, reading what real calls left in real
stores: calls over gRPC (grpclib, monitor attached) and over REST (the gateway, same monitor)."""

from __future__ import annotations

import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from grpclib import GRPCError

from protoc_gen_restmon.runtime.monitor.model import KeyType
from tests.support.admin_fixtures import AdminStack

SERVICE = "bookstore.v1.BookstoreService"


@dataclass(frozen=True)
class Call:
    """One call the scenario makes, and what its record must say."""

    transport: str  # "grpc" | "http"
    method: str
    target: str  # the gRPC request's argument, or the HTTP path
    status: str
    code: str
    with_key: bool = False


SCENARIO = [
    Call("grpc", "ListShelves", "", "success", "OK"),
    Call("grpc", "ListShelves", "", "success", "OK"),
    Call("grpc", "GetShelf", "fail-5", "error", "NOT_FOUND"),
    Call("grpc", "ListGenres", "", "success", "OK", with_key=True),
    Call("grpc", "ListGenres", "", "error", "UNAUTHENTICATED"),
    Call("http", "ListShelves", "/v1/shelves", "success", "OK"),
    Call("http", "GetShelf", "/v1/shelves/nowhere", "error", "NOT_FOUND"),
    Call("http", "GetShelf", "/v1/shelves/fail-4", "timeout", "DEADLINE_EXCEEDED"),
    Call("http", "ListGenres", "/v1/genres", "success", "OK", with_key=True),
]
SUCCESSES = sum(c.status == "success" for c in SCENARIO)


def make_call(stack: AdminStack, call: Call) -> None:
    pb = stack.pb
    if call.transport == "http":
        headers = {"X-Api-Key": stack.api_key} if call.with_key else {}
        with stack.client(headers=headers) as client:
            client.get(call.target)
        return
    metadata = {"x-api-key": stack.api_key} if call.with_key else None
    requests = {
        "ListShelves": lambda stub: stub.list_shelves(pb.ListShelvesRequest(), metadata=metadata),
        "GetShelf": lambda stub: stub.get_shelf(
            pb.GetShelfRequest(shelf=call.target), metadata=metadata
        ),
        "ListGenres": lambda stub: stub.list_genres(pb.ListGenresRequest(), metadata=metadata),
    }
    try:
        stack.grpc(requests[call.method])
    except GRPCError as error:
        assert error.status.name == call.code


@pytest.fixture(scope="module")
def stack(admin_stack: AdminStack) -> AdminStack:
    """The module's stack once every call of SCENARIO was made and written."""
    for call in SCENARIO:
        make_call(admin_stack, call)
    admin_stack.flush()
    return admin_stack


def get(stack: AdminStack, path: str, **params: Any) -> Any:
    with stack.admin() as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def all_requests(stack: AdminStack) -> list[dict[str, Any]]:
    return list(get(stack, "/api/grpc/monitor/requests/", limit=1000)["results"])


def utc(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_requests_lists_every_call_newest_first(stack: AdminStack) -> None:
    answer = get(stack, "/api/grpc/monitor/requests/")
    results = answer["results"]
    assert answer["count"] == len(results) == len(SCENARIO)
    times = [utc(r["created_at"]) for r in results]
    assert times == sorted(times, reverse=True)
    seen = Counter(
        (r["transport"], r["method_name"], r["status"], r["grpc_status_code"]) for r in results
    )
    assert seen == Counter((c.transport, c.method, c.status, c.code) for c in SCENARIO)
    assert all(r["service_name"] == SERVICE for r in results)
    assert all(r["duration_ms"] is not None and r["duration_ms"] >= 0 for r in results)


def test_requests_carry_the_api_key_and_http_details(stack: AdminStack) -> None:
    results = all_requests(stack)
    keyed = [r for r in results if r["api_key_id"] is not None]
    assert len(keyed) == sum(c.with_key for c in SCENARIO)
    assert {(r["api_key_id"], r["api_key_name"]) for r in keyed} == {
        (stack.api_key_id, "Analytics")
    }
    http = [r for r in results if r["transport"] == "http"]
    assert sorted(r["http_path"] for r in http) == sorted(
        c.target for c in SCENARIO if c.transport == "http"
    )
    assert all(r["http_method"] == "GET" and r["client_ip"] == "127.0.0.1" for r in http)


FILTERS = [
    pytest.param({"method": "GetShelf"}, lambda c: c.method == "GetShelf", id="method"),
    pytest.param({"service": SERVICE}, lambda c: True, id="service"),
    pytest.param({"service": "other.Service"}, lambda c: False, id="other-service"),
    pytest.param({"status": "error"}, lambda c: c.status == "error", id="status-error"),
    pytest.param({"status": "timeout"}, lambda c: c.status == "timeout", id="status-timeout"),
    pytest.param({"status": "pending"}, lambda c: False, id="status-pending"),
    pytest.param(
        {"method": "ListGenres", "status": "success"},
        lambda c: c.method == "ListGenres" and c.status == "success",
        id="method-and-status",
    ),
    pytest.param({"status": ""}, lambda c: True, id="empty-is-no-filter"),
]


@pytest.mark.parametrize(("params", "selects"), FILTERS)
def test_requests_filters(stack: AdminStack, params: dict[str, str], selects: Any) -> None:
    answer = get(stack, "/api/grpc/monitor/requests/", **params)
    expected = Counter((c.method, c.status) for c in SCENARIO if selects(c))
    assert Counter((r["method_name"], r["status"]) for r in answer["results"]) == expected
    assert answer["count"] == sum(expected.values())


PAGES = [
    pytest.param(2, 0, id="first-two"),
    pytest.param(2, 2, id="next-two"),
    pytest.param(4, 7, id="last-page-short"),
    pytest.param(5, 9, id="past-the-end"),
    pytest.param(1000, 0, id="max-limit"),
]


@pytest.mark.parametrize(("limit", "offset"), PAGES)
def test_requests_pagination(stack: AdminStack, limit: int, offset: int) -> None:
    everything = [r["id"] for r in all_requests(stack)]
    answer = get(stack, "/api/grpc/monitor/requests/", limit=limit, offset=offset)
    assert [r["id"] for r in answer["results"]] == everything[offset : offset + limit]
    assert answer["count"] == len(SCENARIO)


def test_overview(stack: AdminStack) -> None:
    durations = [r["duration_ms"] for r in all_requests(stack)]
    answer = get(stack, "/api/grpc/monitor/overview/", hours=1)
    assert answer == {
        "total_requests": len(SCENARIO),
        "successful_requests": SUCCESSES,
        "failed_requests": len(SCENARIO) - SUCCESSES,
        "success_rate": round(SUCCESSES / len(SCENARIO) * 100, 1),
        "avg_duration_ms": pytest.approx(sum(durations) / len(durations), abs=0.1),
        "total_services": 1,
        "active_api_keys": 1,
    }
    assert get(stack, "/api/grpc/monitor/overview/") == answer  # 24 hours by default


def test_services(stack: AdminStack) -> None:
    [service] = get(stack, "/api/grpc/monitor/services/", hours=8760)["services"]
    assert service["service_name"] == SERVICE
    assert service["total_requests"] == len(SCENARIO)
    assert service["successful_requests"] == SUCCESSES
    assert service["methods_count"] == len({c.method for c in SCENARIO})


@pytest.mark.parametrize("service", [None, SERVICE])
def test_methods(stack: AdminStack, service: str | None) -> None:
    params = {} if service is None else {"service": service}
    methods = get(stack, "/api/grpc/monitor/methods/", **params)["methods"]
    records = all_requests(stack)
    assert sorted(m["method_name"] for m in methods) == sorted({c.method for c in SCENARIO})
    for method in methods:
        calls = [c for c in SCENARIO if c.method == method["method_name"]]
        durations = [r["duration_ms"] for r in records if r["method_name"] == method["method_name"]]
        assert method["service_name"] == SERVICE
        assert method["total_requests"] == len(calls)
        assert method["successful_requests"] == sum(c.status == "success" for c in calls)
        assert method["min_duration_ms"] == pytest.approx(min(durations), abs=0.1)
        assert method["max_duration_ms"] == pytest.approx(max(durations), abs=0.1)


def test_methods_of_an_unknown_service_is_empty(stack: AdminStack) -> None:
    assert get(stack, "/api/grpc/monitor/methods/", service="nope.Service") == {"methods": []}


def test_health(stack: AdminStack) -> None:
    health = get(stack, "/api/grpc/monitor/health/")
    assert health["status"] == "healthy" and health["server_running"] is True
    assert health["registered_services"] == 1
    assert health["uptime_seconds"] > 0


def test_metrics_are_prometheus_text(stack: AdminStack) -> None:
    with stack.admin() as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    handled = [line for line in lines if line.startswith("grpc_server_handled_total{")]
    assert any('grpc_method="GetShelf"' in line for line in handled)


def test_api_keys_list_and_detail(stack: AdminStack) -> None:
    answer = get(stack, "/api/grpc/api-keys/")
    assert answer["count"] == 1
    [key] = answer["results"]
    assert key["id"] == stack.api_key_id and key["name"] == "Analytics"
    assert key["key_type"] == "service" and key["is_active"] and key["is_valid"]
    assert key["masked_key"] == f"{stack.api_key[:4]}...{stack.api_key[-4:]}"
    assert stack.api_key not in str(answer)
    assert key["request_count"] == sum(c.with_key for c in SCENARIO)
    assert utc(key["last_used_at"]) >= utc(key["created_at"])
    assert key["expires_at"] is None
    assert get(stack, f"/api/grpc/api-keys/{stack.api_key_id}/") == key
    assert get(stack, f"/api/grpc/api-keys/{stack.api_key_id}") == key  # no trailing slash


KEY_FILTERS = [
    pytest.param({"is_active": "true"}, 1, id="active"),
    pytest.param({"is_active": "false"}, 0, id="inactive"),
    pytest.param({"key_type": "service"}, 1, id="type-service"),
    pytest.param({"key_type": "cli"}, 0, id="type-cli"),
    pytest.param({"user_id": "5"}, 1, id="user"),
    pytest.param({"user_id": "6"}, 0, id="other-user"),
]


@pytest.mark.parametrize(("params", "count"), KEY_FILTERS)
def test_api_keys_filters(stack: AdminStack, params: dict[str, str], count: int) -> None:
    answer = get(stack, "/api/grpc/api-keys/", **params)
    assert answer["count"] == len(answer["results"]) == count


def test_api_key_stats(stack: AdminStack) -> None:
    assert get(stack, "/api/grpc/api-keys/stats/") == {
        "total_keys": 1,
        "active_keys": 1,
        "expired_keys": 0,
        "total_requests": sum(c.with_key for c in SCENARIO),
        "keys_by_type": {t.value: int(t is KeyType.SERVICE) for t in KeyType},
    }


@pytest.mark.parametrize("key_id", ["999", "abc", "-1", "1.0"])
def test_unknown_api_key_is_404(stack: AdminStack, key_id: str) -> None:
    with stack.admin() as client:
        response = client.get(f"/api/grpc/api-keys/{key_id}/")
    assert response.status_code == 404
    assert response.json()["code"] == 5


BAD_QUERIES = [
    pytest.param("/api/grpc/monitor/overview/", "hours=abc", "hours", id="hours-text"),
    pytest.param("/api/grpc/monitor/overview/", "hours=-1", "hours", id="hours-negative"),
    pytest.param("/api/grpc/monitor/services/", "hours=0", "hours", id="hours-zero"),
    pytest.param("/api/grpc/monitor/methods/", "hours=8761", "hours", id="hours-too-many"),
    pytest.param("/api/grpc/monitor/requests/", "status=ok", "status", id="status-unknown"),
    pytest.param("/api/grpc/monitor/requests/", "limit=0", "limit", id="limit-zero"),
    pytest.param("/api/grpc/monitor/requests/", "limit=1001", "limit", id="limit-too-big"),
    pytest.param("/api/grpc/monitor/requests/", "limit=ten", "limit", id="limit-text"),
    pytest.param("/api/grpc/monitor/requests/", "offset=-1", "offset", id="offset-negative"),
    pytest.param("/api/grpc/api-keys/", "is_active=maybe", "is_active", id="is-active"),
    pytest.param("/api/grpc/api-keys/", "key_type=robot", "key_type", id="key-type"),
    pytest.param("/api/grpc/api-keys/", "user_id=me", "user_id", id="user-id"),
]


@pytest.mark.parametrize(("path", "query", "name"), BAD_QUERIES)
def test_bad_query_values_are_400(stack: AdminStack, path: str, query: str, name: str) -> None:
    with stack.admin() as client:
        response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 3 and body["message"].startswith(f"{name}: ")


def test_hours_bounds_are_accepted(stack: AdminStack) -> None:
    for hours in (1, 8760):
        assert get(stack, "/api/grpc/monitor/overview/", hours=hours)["total_requests"] == len(
            SCENARIO
        )


def test_trailing_slash_is_optional(stack: AdminStack) -> None:
    for path in ("/api/grpc/monitor/services", "/api/grpc/api-keys/stats", "/metrics/"):
        with stack.admin() as client:
            assert client.get(path).status_code == 200, path


def test_http_client_is_not_confused_with_admin(stack: AdminStack) -> None:
    """Gateway paths still reach the gateway behind `with_admin`."""
    with httpx.Client(base_url=stack.base) as client:
        assert client.get("/v1/shelves").status_code == 200
        assert client.get("/api/grpc/monitor/health/").status_code == 401


def test_dashboard_page_reads_endpoints_that_answer(stack: AdminStack) -> None:
    """The page's script fetches relative URLs: each one, resolved against the page, answers."""
    page = "/api/grpc/monitor/dashboard/"
    with stack.admin() as client:
        response = client.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        fetched = re.findall(r'get\(`?"?(\.\./[^`"?]+/)', response.text)
        assert sorted(set(fetched)) == [
            "../../api-keys/",
            "../../api-keys/stats/",
            "../health/",
            "../methods/",
            "../overview/",
            "../requests/",
            "../services/",
            "../timeseries/",
        ]
        for path in fetched:
            url = urllib.parse.urljoin(page, path)
            assert client.get(url, params={"hours": 24}).status_code == 200, url
    assert "innerHTML" not in response.text  # recorded values are client data: text only
