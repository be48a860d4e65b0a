"""The gateway over real HTTP: uvicorn on a loopback port, bare and mounted in Starlette/FastAPI.

A representative subset of the ASGI conformance rows (test_gateway_conformance*.py), sent by an
HTTP client through a real server, for each way of deploying the gateway:

- `bare`: uvicorn serves the gateway itself (uvicorn also drives its lifespan);
- `root-path`: the same behind a proxy that strips `/api` (uvicorn `--root-path /api`: `path` and
  `raw_path` both start with `/api`, the client does not send it);
- `starlette`: `Starlette(routes=[Mount("/api", app=gateway)])`;
- `fastapi`: `FastAPI().mount("/api", gateway)`.

Under a mount the server's `raw_path` still holds `/api`, `root_path` says where the mount is,
and the gateway must route the rest (`/api/v1/shelves/a%2Fb` is `GetShelf(shelf="a/b")`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.support.gateway_fixtures import DUNE, SECRET, UUID, assert_status_shape, serve
from tests.support.servers import uvicorn_server

DEPLOYMENTS = ["bare", "root-path", "starlette", "fastapi"]
JSON_TYPE = {"content-type": "application/json"}


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def client(request: pytest.FixtureRequest, bookstore_pb: ModuleType) -> Iterator[httpx.Client]:
    """An HTTP client whose base URL reaches the gateway's `/` in one deployment."""
    gateway = serve(bookstore_pb).gateway
    app: Any = gateway
    config: dict[str, Any] = {}
    prefix = "/api"
    if request.param == "bare":
        prefix = ""
    elif request.param == "root-path":
        config = {"root_path": "/api"}
        prefix = ""
    elif request.param == "starlette":
        app = Starlette(routes=[Mount("/api", app=gateway)])
    else:
        app = FastAPI()
        app.mount("/api", gateway)
    with (
        uvicorn_server(app, **config) as url,
        httpx.Client(base_url=url + prefix, timeout=10) as http,
    ):
        yield http


def assert_status(response: httpx.Response, http_status: int, code: int, fragment: str) -> None:
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert_status_shape(body)
    assert body["code"] == code
    assert fragment in body["message"]


# --- Routing and path decoding ---


def test_http_unary_get(client: httpx.Client) -> None:
    response = client.get("/v1/shelves/fiction")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["displayName"] == "Fiction"
    assert response.headers["content-length"] == str(len(response.content))


def test_http_single_segment_variable_decodes_escaped_slash(client: httpx.Client) -> None:
    response = client.get("/v1/shelves/a%2Fb%20c")
    assert_status(response, 404, 5, "shelves/a/b c not found")


def test_http_reserved_expansion_variable_keeps_reserved_escapes(client: httpx.Client) -> None:
    response = client.get(f"/v1/{DUNE}/files/y%2Fz%3Aw%20v")
    assert response.status_code == 200
    assert response.json()["name"] == f"{DUNE}/files/y%2Fz%3Aw v"


def test_http_unknown_path_is_404_status(client: httpx.Client) -> None:
    assert_status(client.get("/v1/nothing"), 404, 5, "no route matches the path '/v1/nothing'")


def test_http_known_path_other_method_is_405_with_allow(client: httpx.Client) -> None:
    response = client.delete("/v1/shelves")
    assert_status(response, 405, 12, "method DELETE is not allowed")
    assert response.headers["allow"] == "GET, HEAD, POST"


def test_http_malformed_escape_is_400(client: httpx.Client) -> None:
    assert_status(client.get("/v1/shelves/a%zz"), 400, 3, "malformed percent-escape '%zz'")


def test_http_head_has_headers_but_no_body(client: httpx.Client) -> None:
    response = client.head("/v1/shelves/fiction")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == "application/json"


# --- Requests ---


def test_http_query_parameters(client: httpx.Client) -> None:
    response = client.get("/v1/shelves/fiction/books?genres=GENRE_SCIENCE_FICTION&genres=3")
    assert response.status_code == 200
    assert [book["title"] for book in response.json()["books"]] == ["Dune"]


def test_http_unknown_query_parameter_is_400(client: httpx.Client) -> None:
    assert_status(client.get("/v1/shelves?bogus=1"), 400, 3, 'unknown query parameter "bogus"')


def test_http_post_json_body(client: httpx.Client) -> None:
    shelf_id = f"s{time.monotonic_ns()}"
    response = client.post(
        f"/v1/shelves?shelf_id={shelf_id}", json={"displayName": "Poetry", "theme": 6}
    )
    assert response.status_code == 200
    assert response.json() | {"createTime": None} == {
        "name": f"shelves/{shelf_id}",
        "displayName": "Poetry",
        "theme": "GENRE_POETRY",
        "bookCount": "0",
        "labels": {},
        "createTime": None,
    }


def test_http_body_that_is_not_json_is_415(client: httpx.Client) -> None:
    response = client.post(
        "/v1/shelves?shelf_id=x", content=b"name=x", headers={"content-type": "text/plain"}
    )
    assert_status(response, 415, 3, 'unsupported content type "text/plain"')


def test_http_body_over_4_mib_is_413(client: httpx.Client) -> None:
    body = b" " * (4 * 1024 * 1024 + 1)
    response = client.post("/v1/shelves?shelf_id=big", content=body, headers=JSON_TYPE)
    assert_status(response, 413, 8, "limit of 4194304 bytes")


def test_http_patch_fills_the_update_mask(client: httpx.Client) -> None:
    response = client.patch(f"/v1/{DUNE}", json={"weightKg": 0.5})
    assert response.status_code == 200
    assert response.json()["weightKg"] == 0.5
    assert response.json()["title"] == "Dune"


def test_http_client_streaming_chunked_upload(client: httpx.Client) -> None:
    lines = [
        b'{"name":"shelves/fiction/books/up1"}\n',
        b'{"name":"shelves/fic',
        b'tion/books/up2"}\n',
    ]
    response = client.post(
        "/v1/books:import", content=iter(lines), headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 200
    assert response.json()["bookNames"] == [
        "shelves/fiction/books/up1",
        "shelves/fiction/books/up2",
    ]


# --- Streaming responses ---


def test_http_server_stream_ndjson(client: httpx.Client) -> None:
    with client.stream("GET", "/v1/shelves/fiction:watch?maxEvents=1") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["transfer-encoding"] == "chunked"
        lines = [json.loads(line) for line in response.iter_lines()]
    assert [line["result"]["bookAdded"]["title"] for line in lines] == ["Dune"]


def test_http_server_stream_sse(client: httpx.Client) -> None:
    headers = {"accept": "text/event-stream"}
    with client.stream("GET", "/v1/shelves/fiction:watch?maxEvents=1", headers=headers) as response:
        assert response.headers["content-type"] == "text/event-stream"
        text = response.read().decode()
    [event] = text.removesuffix("\n\n").split("\n\n")
    assert json.loads(event.removeprefix("data: "))["result"]["shelf"] == "shelves/fiction"


def test_http_stream_error_after_first_message_is_a_final_line(client: httpx.Client) -> None:
    with client.stream("GET", "/v1/shelves/flaky:watch") as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines()]
    assert lines[-1] == {
        "error": {"code": 14, "message": "the shelf sensor went offline", "details": []}
    }
    assert len(lines) == 2


def test_http_stream_error_before_first_message_is_an_error_status(client: httpx.Client) -> None:
    assert_status(client.get("/v1/shelves/nope:watch"), 404, 5, "shelves/nope not found")


# --- Errors and headers ---


def test_http_unauthenticated_sets_www_authenticate(client: httpx.Client) -> None:
    response = client.get("/v1/shelves/fail-16")
    assert_status(response, 401, 16, "injected failure with code 16")
    assert response.headers["www-authenticate"]


def test_http_handler_exception_is_500_without_internals(client: httpx.Client) -> None:
    response = client.get("/v1/shelves/crash")
    assert_status(response, 500, 13, "internal error")
    assert SECRET not in response.text


def test_http_request_id_generated_or_echoed(client: httpx.Client) -> None:
    assert UUID.fullmatch(client.get("/v1/shelves/fiction").headers["x-request-id"])
    echoed = client.get("/v1/nothing", headers={"x-request-id": "req-7"})
    assert echoed.headers["x-request-id"] == "req-7"


# --- Only under a mount ---


@pytest.fixture(scope="module")
def mounted(bookstore_pb: ModuleType) -> Iterator[httpx.Client]:
    """The gateway under `/api` of a Starlette app that has a route of its own."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    app = Starlette(
        routes=[
            Route("/health", lambda request: PlainTextResponse("ok")),
            Mount("/api", app=serve(bookstore_pb).gateway),
        ]
    )
    with uvicorn_server(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


MOUNT_CASES = [
    pytest.param("/health", 200, "text/plain; charset=utf-8", id="host-app-route"),
    pytest.param("/v1/shelves/fiction", 404, "text/plain; charset=utf-8", id="outside-the-mount"),
    pytest.param("/api/v1/shelves/fiction", 200, "application/json", id="inside-the-mount"),
    pytest.param("/api/", 404, "application/json", id="mount-root-is-gateway-404"),
]


@pytest.mark.parametrize(("target", "status", "content_type"), MOUNT_CASES)
def test_http_mount_routes_only_below_its_prefix(
    mounted: httpx.Client, target: str, status: int, content_type: str
) -> None:
    response = mounted.get(target)
    assert response.status_code == status
    assert response.headers["content-type"] == content_type


def test_http_patch_unsets_a_oneof_member_the_mask_names(client: httpx.Client) -> None:
    """`{"price": null}`: the mask says `price`, the request leaves it unset, so the book's price
    goes (examples/bookstore.py once answered 400, reading the unset oneof member)."""
    price = {"currencyCode": "EUR", "units": "12", "nanos": 0}
    created = client.post("/v1/shelves/fiction/books?book_id=priced", json={"price": price})
    assert created.json()["price"] == price
    response = client.patch("/v1/shelves/fiction/books/priced", json={"price": None})
    assert response.status_code == 200, response.text
    assert "price" not in response.json()
    assert "price" not in client.get("/v1/shelves/fiction/books/priced").json()
