"""What Google's generated REST clients need from the gateway, over real HTTP, on every backend.

- System parameters (docs/http-transcoding.md §3): `$alt=json;enum-encoding=int` on every request
  makes that response write enum numbers (unary, streaming, `response_body`), `$`-keys and the
  documented names without `$` never are a 400, a field named `key` still gets its value.
- Error bodies (§5) in both formats, `GatewayOptions(error_format="status" | "google")`: the
  bare google.rpc.Status, or AIP-193's `{"error": {"code": <HTTP status>, "message", "status",
  "details"}}`, for the gateway's own errors, the service's (details included) and a stream's
  final error line. google-api-core's `format_http_response_error` reads `error.message` and
  `error.details` of that body and picks the exception class from the HTTP status: those are
  what these tests pin.
- `restmon serve --error-format google`, as a process.

Each backend (in process, proxy to grpclib, proxy to grpcio) serves two gateways under uvicorn,
one per error format; the proxy backends share one upstream service (the one installed last).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.errors import ConfigError
from protoc_gen_restmon.runtime.gateway.app import GatewayOptions
from protoc_gen_restmon.runtime.gateway.http import ERROR_FORMATS, google_error_json
from protoc_gen_restmon.runtime.status import HTTP_STATUS, Code, detail_json
from protoc_gen_restmon.serve_cli import ERROR_FORMATS as CLI_ERROR_FORMATS
from tests.support.gateway_fixtures import (
    DETAILED_FAILURE,
    DUNE,
    FAILURE_DETAILS,
    GENERATED,
    Backend,
    Served,
)
from tests.support.proxy_fixtures import running_upstream
from tests.support.servers import free_port, uvicorn_server

GOOGLE_ALT = {"$alt": "json;enum-encoding=int"}  # httpx sends it as %24alt=json%3Benum-...


@dataclass(frozen=True)
class Site:
    """One gateway under uvicorn: its client and the service behind it."""

    http: httpx.Client
    served: Served


@pytest.fixture(name="sites", scope="module")
def fixture_sites(bookstore_pb: ModuleType, backend: Backend) -> Iterator[dict[str, Site]]:
    """A gateway per error format on this backend, each served by uvicorn on a loopback port."""
    gateways = {
        f: backend.serve(bookstore_pb, GatewayOptions(error_format=f)) for f in ERROR_FORMATS
    }
    with (
        uvicorn_server(gateways["status"].gateway) as status_url,
        uvicorn_server(gateways["google"].gateway) as google_url,
        httpx.Client(base_url=status_url, timeout=10) as status_http,
        httpx.Client(base_url=google_url, timeout=10) as google_http,
    ):
        yield {
            "status": Site(status_http, gateways["status"]),
            "google": Site(google_http, gateways["google"]),
        }


@pytest.fixture(name="google")
def fixture_google(sites: dict[str, Site]) -> httpx.Client:
    return sites["google"].http


@pytest.fixture(name="status")
def fixture_status(sites: dict[str, Site]) -> httpx.Client:
    return sites["status"].http


def google_error(response: httpx.Response) -> dict[str, Any]:
    """The AIP-193 body of an error response, checked for its shape; returns `error`."""
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "status", "details"}, error
    assert error["code"] == response.status_code, error
    assert isinstance(error["message"], str) and isinstance(error["details"], list), error
    return error


def status_error(response: httpx.Response) -> dict[str, Any]:
    """The google.rpc.Status body of an error response, checked for its shape."""
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"}, body
    return body


# --- Error bodies: both formats, the same HTTP statuses ---


ERRORS = [
    pytest.param("GET", "/v1/shelves/nowhere", Code.NOT_FOUND, 404, "nowhere", id="service-404"),
    pytest.param(
        "GET", "/v1/nothing", Code.NOT_FOUND, 404, "no route matches", id="gateway-no-route"
    ),
    pytest.param("DELETE", "/v1/shelves", Code.UNIMPLEMENTED, 405, "not allowed", id="gateway-405"),
    pytest.param(
        "GET", "/v1/shelves?bogus=1", Code.INVALID_ARGUMENT, 400, '"bogus"', id="unknown-query"
    ),
    pytest.param("GET", "/v1/shelves/fail-6", Code.ALREADY_EXISTS, 409, "code 6", id="service-409"),
    pytest.param(
        "GET", "/v1/shelves/fail-16", Code.UNAUTHENTICATED, 401, "code 16", id="service-401"
    ),
    pytest.param("GET", "/v1/shelves/fail-14", Code.UNAVAILABLE, 503, "code 14", id="service-503"),
]


@pytest.mark.parametrize(("method", "path", "code", "http_status", "fragment"), ERRORS)
def test_error_in_both_formats(
    sites: dict[str, Site], method: str, path: str, code: Code, http_status: int, fragment: str
) -> None:
    plain = sites["status"].http.request(method, path)
    google = sites["google"].http.request(method, path)
    assert plain.status_code == google.status_code == http_status, (plain.text, google.text)
    body = status_error(plain)
    error = google_error(google)
    assert (body["code"], error["status"]) == (code, code.name)
    assert body["message"] == error["message"] and fragment in error["message"]
    assert body["details"] == error["details"] == []
    for header in ("allow", "www-authenticate"):
        assert plain.headers.get(header) == google.headers.get(header)


def test_error_details_in_both_formats(sites: dict[str, Site]) -> None:
    """What the service raised, details and all: BadRequest and ErrorInfo with their @type
    (google-api-core takes ErrorInfo's reason and domain from `details`)."""
    wanted = [detail_json(detail) for detail in FAILURE_DETAILS]
    body = status_error(sites["status"].http.get("/v1/shelves/fail-details"))
    response = sites["google"].http.get("/v1/shelves/fail-details")
    assert response.status_code == 400
    error = google_error(response)
    assert body == {"code": 3, "message": DETAILED_FAILURE, "details": wanted}
    assert error == {
        "code": 400,
        "message": DETAILED_FAILURE,
        "status": "INVALID_ARGUMENT",
        "details": wanted,
    }
    [info] = [d for d in error["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert (info["reason"], info["domain"]) == ("SHELF_ID_RESERVED", "bookstore.example")


def test_internal_error_in_google_format(sites: dict[str, Site], backend: Backend) -> None:
    """A failing handler: what the backend reports (in process: 500 INTERNAL, nothing leaked)."""
    code, _ = backend.internal
    response = sites["google"].http.get("/v1/shelves/crash")
    assert response.status_code == 500
    error = google_error(response)
    assert error["status"] == Code(code).name
    assert (
        error["message"] == status_error(sites["status"].http.get("/v1/shelves/crash"))["message"]
    )


@pytest.mark.parametrize("sse", [False, True], ids=["ndjson", "sse"])
def test_stream_error_line_in_both_formats(sites: dict[str, Site], sse: bool) -> None:
    headers = {"accept": "text/event-stream"} if sse else {}
    lines = {}
    for error_format, site in sites.items():
        with site.http.stream("GET", "/v1/shelves/flaky:watch", headers=headers) as response:
            assert response.status_code == 200
            text = response.read().decode()
        if sse:
            chunks = [e.removeprefix("data: ") for e in text.removesuffix("\n\n").split("\n\n")]
        else:
            chunks = text.removesuffix("\n").split("\n")
        lines[error_format] = [json.loads(chunk) for chunk in chunks]
    for stream in lines.values():
        assert stream[0]["result"]["bookRemoved"] == "shelves/flaky/books/first"
        assert len(stream) == 2
    message = "the shelf sensor went offline"
    assert lines["status"][1] == {"error": {"code": 14, "message": message, "details": []}}
    assert lines["google"][1] == {
        "error": {"code": 503, "message": message, "status": "UNAVAILABLE", "details": []}
    }


def test_error_before_the_stream_is_an_ordinary_error(google: httpx.Client) -> None:
    response = google.get("/v1/shelves/nowhere:watch")
    assert response.status_code == 404
    assert google_error(response)["status"] == "NOT_FOUND"


# --- System parameters ---


def test_alt_enum_encoding_int_writes_enum_numbers(status: httpx.Client) -> None:
    named = status.get("/v1/shelves/fiction")
    numbered = status.get("/v1/shelves/fiction", params=GOOGLE_ALT)
    assert named.status_code == numbered.status_code == 200, numbered.text
    assert named.json()["theme"] == "GENRE_FICTION"
    assert numbered.json() == named.json() | {"theme": 1}


@pytest.mark.parametrize(
    "query",
    [
        "$alt=json;enum-encoding=int",  # unencoded, as a hand-written URL has it
        "%24alt=json%3Benum-encoding%3Dint",
        "alt=json;enum-encoding=int",  # GetShelfRequest has no `alt` field
    ],
)
def test_alt_spellings(status: httpx.Client, query: str) -> None:
    response = status.get(f"/v1/shelves/fiction?{query}")
    assert response.status_code == 200, response.text
    assert response.json()["theme"] == 1


def test_alt_json_alone_keeps_enum_names(status: httpx.Client) -> None:
    response = status.get("/v1/shelves/fiction", params={"$alt": "json"})
    assert response.json()["theme"] == "GENRE_FICTION"


def test_alt_on_a_stream_writes_enum_numbers(status: httpx.Client) -> None:
    params = {"maxEvents": "1", **GOOGLE_ALT}
    with status.stream("GET", "/v1/shelves/fiction:watch", params=params) as response:
        assert response.status_code == 200
        [line] = [json.loads(text) for text in response.iter_lines()]
    assert line["result"]["bookAdded"]["genres"] == [4]  # GENRE_SCIENCE_FICTION


def test_alt_on_a_response_body_array(status: httpx.Client) -> None:
    assert status.get("/v1/genres").json() == ["GENRE_SCIENCE_FICTION"]
    assert status.get("/v1/genres", params=GOOGLE_ALT).json() == [4]


def test_alt_is_per_call(status: httpx.Client) -> None:
    """One call's `$alt` does not leak into the next call's JSON options."""
    assert status.get("/v1/shelves/fiction", params=GOOGLE_ALT).json()["theme"] == 1
    assert status.get("/v1/shelves/fiction").json()["theme"] == "GENRE_FICTION"


def test_system_parameters_with_body_star(google: httpx.Client) -> None:
    """CheckoutBook takes every field from the body: system parameters are still no 400."""
    response = google.post(
        f"/v1/{DUNE}:checkout",
        params={**GOOGLE_ALT, "$fields": "name", "key": "AIza-1", "quotaUser": "u"},
        json={"memberId": "m1"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["borrower"] == "m1"


def test_system_parameters_are_dropped_on_a_write(google: httpx.Client) -> None:
    response = google.post(
        "/v1/shelves",
        params={"shelf_id": "sys", "$.xgafv": "2", "prettyPrint": "false", **GOOGLE_ALT},
        json={"displayName": "System", "theme": "GENRE_POETRY"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["theme"] == 6


@pytest.mark.parametrize(
    "params",
    [
        {"key": "AIza-1"},
        {"fields": "name", "prettyPrint": "true", "quotaUser": "u", "alt": "json"},
        {"$fields": "name", "$prettyPrint": "false", "$.xgafv": "2", "$unknown": "x"},
        {"access_token": "t", "callback": "f", "uploadType": "media", "upload_protocol": "raw"},
    ],
    ids=["key", "documented", "dollar", "more"],
)
def test_system_parameters_are_no_400(sites: dict[str, Site], params: dict[str, str]) -> None:
    for site in sites.values():
        response = site.http.get("/v1/shelves/fiction", params=params)
        assert response.status_code == 200, response.text
        assert response.json()["displayName"] == "Fiction"


def test_a_field_named_key_gets_the_value(sites: dict[str, Site]) -> None:
    """ListBooksRequest has a `key` field: `?key=` is that field there, not an API key."""
    site = sites["google"]  # for the proxy backends, the upstream service installed last
    response = site.http.get("/v1/shelves/fiction/books", params={"key": "sku-1", **GOOGLE_ALT})
    assert response.status_code == 200, response.text
    handler, request = site.served.requests()[-1]
    assert (handler, request) == ("list_books", {"parent": "shelves/fiction", "key": "sku-1"})


def test_other_unknown_parameters_stay_a_400(google: httpx.Client) -> None:
    response = google.get("/v1/shelves/fiction", params={**GOOGLE_ALT, "Key": "x"})
    assert response.status_code == 400
    error = google_error(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert 'unknown query parameter "Key"' in error["message"]


# --- The options and the AIP-193 body itself (no HTTP) ---


def test_error_format_is_checked_when_built() -> None:
    with pytest.raises(ConfigError, match="error_format: 'xml' is not one of 'status', 'google'"):
        GatewayOptions(error_format="xml")  # type: ignore[arg-type]


def test_cli_offers_the_gateway_error_formats() -> None:
    assert CLI_ERROR_FORMATS == ERROR_FORMATS


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(code=st.integers(-5, 40), message=st.text())
def test_google_error_json_for_any_code(code: int, message: str) -> None:
    """`status` is the code's name (UNKNOWN outside google.rpc.Code), `code` the HTTP status."""
    error = json.loads(google_error_json(code, message))["error"]
    known = code in {c.value for c in Code}
    assert error == {
        "code": HTTP_STATUS[Code(code)] if known else 500,
        "message": message,
        "status": Code(code).name if known else "UNKNOWN",
        "details": [],
    }


# --- restmon serve --error-format google ---


def test_serve_with_google_error_format(
    bookstore_pb: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from examples.bookstore import make_service
    from tests.test_cli_serve import output_root, run_server, serve_command

    port = free_port()
    with running_upstream(make_service(bookstore_pb)) as upstream:
        command = serve_command(
            upstream.address,
            *("--package", GENERATED, "--path", str(output_root(bookstore_pb))),
            *("--port", str(port), "--error-format", "google"),
        )
        cwd: Path = tmp_path_factory.mktemp("serve_google")
        for base in run_server(command, cwd, port):
            missing = httpx.get(f"{base}/v1/shelves/nowhere", params=GOOGLE_ALT)
            assert missing.status_code == 404
            assert google_error(missing)["status"] == "NOT_FOUND"
            shelf = httpx.get(f"{base}/v1/shelves/fiction", params=GOOGLE_ALT)
            assert shelf.status_code == 200, shelf.text
            assert shelf.json()["theme"] == 1


def test_a_bad_body_is_answered_before_a_bad_query(google: httpx.Client) -> None:
    """Reading `$alt` does not change which error a request gets: the body's comes first."""
    response = google.request("GET", "/v1/shelves/fiction?$alt=json&%zz", content=b"{}")
    assert response.status_code == 400
    assert "takes no request body" in google_error(response)["message"]
