"""Admin authentication over real HTTP: every endpoint refuses missing, wrong and non-admin
credentials (an API key is not one) with a 401 challenge, and accepts Basic and Bearer."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from protoc_gen_restmon.runtime.admin.auth import CHALLENGE, AdminAuth, create_admin_token
from protoc_gen_restmon.runtime.monitor.keys import hash_password
from protoc_gen_restmon.runtime.monitor.stores import SqlStore
from protoc_gen_restmon.runtime.status import RpcError
from tests.support.admin_fixtures import ADMIN_PASSWORD, ADMIN_USER, AdminStack

ENDPOINTS = [
    pytest.param("GET", "/cfg/grpc/proto-files/", id="proto-list"),
    pytest.param("GET", "/cfg/grpc/proto-files/bookstore.v1.bookstore/", id="proto-file"),
    pytest.param("GET", "/cfg/grpc/proto-files/download-all/", id="proto-zip"),
    pytest.param("POST", "/cfg/grpc/proto-files/generate/", id="proto-generate"),
    pytest.param("GET", "/api/grpc/api-keys/", id="keys"),
    pytest.param("GET", "/api/grpc/api-keys/1/", id="key"),
    pytest.param("GET", "/api/grpc/api-keys/stats/", id="key-stats"),
    pytest.param("GET", "/api/grpc/monitor/requests/", id="requests"),
    pytest.param("GET", "/api/grpc/monitor/health/", id="health"),
    pytest.param("GET", "/api/grpc/monitor/overview/", id="overview"),
    pytest.param("GET", "/api/grpc/monitor/services/", id="services"),
    pytest.param("GET", "/api/grpc/monitor/methods/", id="methods"),
    pytest.param("GET", "/api/grpc/monitor/dashboard/", id="dashboard"),
    pytest.param("GET", "/metrics", id="metrics"),
    pytest.param("GET", "/api/grpc/api-keys", id="no-trailing-slash"),
    pytest.param("GET", "/api/grpc/nothing-here/", id="unknown-path"),
    pytest.param("DELETE", "/api/grpc/api-keys/1/", id="wrong-method"),
]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bad_credentials(stack: AdminStack, case: str) -> dict[str, str]:
    """Request headers for one kind of bad credentials."""
    match case:
        case "none":
            return {}
        case "wrong-password":
            return {"Authorization": basic(ADMIN_USER, "not the password")}
        case "unknown-user":
            return {"Authorization": basic("mallory", ADMIN_PASSWORD)}
        case "malformed-basic":
            return {"Authorization": "Basic %%%not-base64"}
        case "basic-without-colon":
            return {"Authorization": "Basic " + base64.b64encode(b"admin").decode()}
        case "wrong-token":
            return {"Authorization": "Bearer " + stack.token[:-2] + "xx"}
        case "empty-bearer":
            return {"Authorization": "Bearer"}
        case "api-key-header":
            return {"X-Api-Key": stack.api_key}
        case "api-key-as-bearer":
            return {"Authorization": f"Bearer {stack.api_key}"}
        case "password-as-bearer":
            return {"Authorization": f"Bearer {ADMIN_PASSWORD}"}
        case "unknown-scheme":
            return {"Authorization": f"Token {stack.token}"}
    raise AssertionError(case)


BAD_CASES = [
    "none",
    "wrong-password",
    "unknown-user",
    "malformed-basic",
    "basic-without-colon",
    "wrong-token",
    "empty-bearer",
    "api-key-header",
    "api-key-as-bearer",
    "password-as-bearer",
    "unknown-scheme",
]


def assert_challenge(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.json()["code"] == 16  # UNAUTHENTICATED


# Every endpoint, with no credentials and with the credentials a client may mistake for admin
# ones; the other bad cases below on one endpoint (authentication runs before routing, and a
# wrong password costs a real scrypt verification each time).
PER_ENDPOINT_CASES = ["none", "wrong-token", "api-key-header", "api-key-as-bearer"]


@pytest.mark.parametrize("case", PER_ENDPOINT_CASES)
@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_refuses_bad_credentials(
    admin_stack: AdminStack, method: str, path: str, case: str
) -> None:
    with admin_stack.client(headers=bad_credentials(admin_stack, case)) as client:
        response = client.request(method, path)
    assert_challenge(response)
    assert "json" in response.headers["content-type"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_every_kind_of_bad_credentials_is_refused(admin_stack: AdminStack, case: str) -> None:
    with admin_stack.client(headers=bad_credentials(admin_stack, case)) as client:
        assert_challenge(client.get("/api/grpc/monitor/requests/"))


GOOD = ["basic", "bearer"]


@pytest.mark.parametrize("kind", GOOD)
@pytest.mark.parametrize(("method", "path"), ENDPOINTS[:14])
def test_every_endpoint_accepts_admin_credentials(
    admin_stack: AdminStack, method: str, path: str, kind: str
) -> None:
    auth = httpx.BasicAuth(ADMIN_USER, ADMIN_PASSWORD) if kind == "basic" else None
    headers = {} if kind == "basic" else {"Authorization": f"Bearer {admin_stack.token}"}
    with admin_stack.client(auth, headers) as client:
        response = client.request(method, path)
    # api-keys/1/ exists (the fixture's key is the first); every endpoint answers 200.
    assert response.status_code == 200, response.text


def test_authenticated_unknown_path_is_404_and_wrong_method_405(admin_stack: AdminStack) -> None:
    with admin_stack.admin() as client:
        missing = client.get("/api/grpc/nothing-here/")
        wrong = client.delete("/api/grpc/api-keys/1/")
    assert missing.status_code == 404 and missing.json()["code"] == 5
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"


def test_a_revoked_admin_token_is_refused(admin_stack: AdminStack) -> None:
    store = admin_stack.monitor.store
    token, secret = create_admin_token(store, "short-lived")
    with admin_stack.client(headers={"Authorization": f"Bearer {secret}"}) as client:
        assert client.get("/api/grpc/monitor/health/").status_code == 200
        assert store.revoke_admin_token(token.id)
        assert_challenge(client.get("/api/grpc/monitor/health/"))


def check(auth: AdminAuth, header: str) -> bool:
    try:
        asyncio.run(auth.check(header))
    except RpcError as error:
        assert error.http_status == 401
        return False
    return True


def test_a_changed_password_takes_effect_at_once_despite_the_cache(store: SqlStore) -> None:
    store.set_admin_password("ops", hash_password("first"))
    auth = AdminAuth(store, cache_seconds=3600)
    assert check(auth, basic("ops", "first"))
    store.set_admin_password("ops", hash_password("second"))
    assert not check(auth, basic("ops", "first"))
    assert check(auth, basic("ops", "second"))


def test_cached_verifications_expire(store: SqlStore) -> None:
    store.set_admin_password("ops", hash_password("pw"))
    now = [0.0]
    auth = AdminAuth(store, cache_seconds=10, clock=lambda: now[0])
    assert check(auth, basic("ops", "pw"))
    # One entry for the check itself, one for store outages (user and password only).
    assert len(auth._verified) == 2
    now[0] = 11.0
    assert check(auth, basic("ops", "pw"))  # verified again, the expired entries dropped
    assert list(auth._verified.values()) == [21.0, 21.0]
    # The cache is keyed by a digest: neither the user nor the password is kept.
    assert all(b"pw" not in key and b"ops" not in key for key in auth._verified)
