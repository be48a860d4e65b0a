"""Secrets never leave in plaintext: API keys, admin passwords and admin tokens are absent from
the database, the logs, the admin API's answers and the errors clients get.

One scenario per store (SQLite, PostgreSQL): keys and admin credentials are made through the
real code paths, then valid, revoked, unknown and near-miss keys are used over gRPC (grpclib)
and REST (gateway on uvicorn, access log on), and the admin API is read with right and wrong
credentials, while every logger is captured at DEBUG. Then everything that could hold a secret
is searched for each one. Each search is checked to see what it should (the key hashes in
the database, the access log lines, the masked keys), so an empty search cannot pass.

That includes `hpack` (under grpclib's HTTP/2), which logs every header at DEBUG: the filter in
runtime/log_redaction.py, which a Monitor and a Gateway attach, keeps the values of credential
headers out; the last test checks it on both sides of a proxy.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import httpx
import psycopg
import pytest

from protoc_gen_restmon.runtime.admin.app import AdminApp
from protoc_gen_restmon.runtime.admin.auth import create_admin_token
from protoc_gen_restmon.runtime.admin.mount import with_admin
from protoc_gen_restmon.runtime.gateway.app import Gateway
from protoc_gen_restmon.runtime.monitor.keys import generate_key, hash_key, hash_password
from protoc_gen_restmon.runtime.monitor.model import Store
from protoc_gen_restmon.runtime.monitor.monitor import Monitor
from protoc_gen_restmon.runtime.monitor.stores import sqlite_path
from tests.support.gateway_fixtures import make_test_service
from tests.support.monitor_load import (
    GET_SHELF,
    REST_PATHS,
    WAIT,
    PlannedCall,
    grpc_client,
    grpclib_port,
    issue_keys,
    rest_client,
    rest_server,
)
from tests.support.postgres_server import PostgresServer

ADMIN_USER = "root-admin"
ADMIN_PATHS = (
    "/api/grpc/api-keys/",
    "/api/grpc/api-keys/{id}/",
    "/api/grpc/api-keys/stats/",
    "/api/grpc/monitor/requests/?limit=1000",
    "/api/grpc/monitor/health/",
    "/api/grpc/monitor/overview/",
    "/api/grpc/monitor/methods/",
)


@dataclass
class Secrets:
    valid: str
    valid_id: int
    revoked: str
    unknown: str  # well-formed, never issued
    near: str  # the valid key with its last character changed
    admin_password: str
    admin_token: str

    def api_keys(self) -> list[str]:
        return [self.valid, self.revoked, self.unknown, self.near]

    def all(self) -> dict[str, str]:
        return {
            "valid key": self.valid,
            "revoked key": self.revoked,
            "unknown key": self.unknown,
            "near-miss key": self.near,
            "admin password": self.admin_password,
            "admin token": self.admin_token,
        }


@dataclass
class Seen:
    """Everything the scenario produced that must not hold a secret."""

    client_texts: list[str] = field(default_factory=list)  # errors and bodies clients got
    admin_answers: list[str] = field(default_factory=list)  # the admin API's JSON


def make_secrets(store: Store) -> Secrets:
    [(valid, valid_secret), (revoked, revoked_secret)] = issue_keys(store, 2)
    assert store.revoke_key(revoked.id)
    last = "A" if valid_secret[-1] != "A" else "B"
    admin_password = "correct horse battery staple 42"
    store.set_admin_password(ADMIN_USER, hash_password(admin_password))
    _, token = create_admin_token(store, "secrecy")
    return Secrets(
        valid_secret,
        valid.id,
        revoked_secret,
        generate_key(),
        valid_secret[:-1] + last,
        admin_password,
        token,
    )


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, self.format(record)))

    def text(self, only: tuple[str, ...] = ("",)) -> str:
        return "\n".join(line for name, line in self.lines if name.startswith(only))


@pytest.fixture(name="logs")
def fixture_logs() -> Iterator[Captured]:
    """Every logger's records at DEBUG, formatted as a log file has them. Loggers configured
    earlier in the session (uvicorn's default config stops `uvicorn.access` from propagating
    and sets levels) are opened up for the test and restored after."""
    root = logging.getLogger()
    handler = Captured()
    loggers = [root] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level, logger.propagate, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.propagate, logger.disabled = True, False
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level, propagate, disabled in saved:
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled


@pytest.fixture(name="monitor")
def fixture_monitor(store_url: str, bookstore_pb: ModuleType) -> Iterator[Monitor]:
    # No key cache: a revoked key is refused at once.
    monitor = Monitor(store_url, packages=[bookstore_pb], require_keys=True, key_cache_seconds=0)
    try:
        yield monitor
    finally:
        monitor.close()


async def grpc_calls(port: int, pb: ModuleType, secrets: Secrets, seen: Seen) -> list[str]:
    plan = [
        PlannedCall(GET_SHELF, key, f"secrecy-grpc-{n}") for n, key in enumerate(secrets.api_keys())
    ]
    outcomes = await grpc_client(port, pb, plan)
    seen.client_texts += [o.message for o in outcomes]
    return [o.code for o in outcomes]


async def rest_calls(base: str, secrets: Secrets, seen: Seen) -> list[int]:
    statuses = []
    async with httpx.AsyncClient(base_url=base, timeout=WAIT) as client:
        for key in secrets.api_keys():
            reply = await client.get(REST_PATHS[GET_SHELF], headers={"X-Api-Key": key})
            seen.client_texts += [reply.text, str(reply.headers)]
            statuses.append(reply.status_code)
    return statuses


async def admin_calls(base: str, secrets: Secrets, seen: Seen) -> list[int]:
    """The admin API read with a password and a token; refused with wrong credentials."""
    basic = base64.b64encode(f"{ADMIN_USER}:{secrets.admin_password}".encode()).decode()
    wrong = base64.b64encode(f"{ADMIN_USER}:{secrets.admin_password}!".encode()).decode()
    attempts = [f"Basic {basic}", f"Bearer {secrets.admin_token}"]
    refused = [f"Basic {wrong}", f"Bearer {secrets.valid}", f"Bearer {secrets.admin_token}x"]
    statuses = []
    async with httpx.AsyncClient(base_url=base, timeout=WAIT) as client:
        for authorization in attempts + refused:
            for path in ADMIN_PATHS[:1] if authorization in refused else ADMIN_PATHS:
                url = path.format(id=secrets.valid_id)
                reply = await client.get(url, headers={"Authorization": authorization})
                (seen.admin_answers if reply.is_success else seen.client_texts).append(reply.text)
                statuses.append(reply.status_code)
    return statuses


async def scenario(monitor: Monitor, pb: ModuleType, secrets: Secrets) -> Seen:
    seen = Seen()
    gateway = Gateway(services=[make_test_service(pb)], monitor=monitor)
    async with grpclib_port(monitor, make_test_service(pb)) as port:
        with rest_server(with_admin(gateway, AdminApp(monitor)), access_log=True) as base:
            assert await grpc_calls(port, pb, secrets, seen) == ["OK"] + ["UNAUTHENTICATED"] * 3
            assert await rest_calls(base, secrets, seen) == [200, 401, 401, 401]
            statuses = await admin_calls(base, secrets, seen)
    assert statuses == [200] * 2 * len(ADMIN_PATHS) + [401] * 3
    assert await asyncio.to_thread(monitor.writer.flush, WAIT)
    return seen


def database_text(store_url: str, postgres: PostgresServer | None) -> bytes:
    """All the database holds: the SQLite files' bytes, or every row of every PostgreSQL
    table (as text) and the server's log."""
    if postgres is None:
        path = sqlite_path(store_url)
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    with psycopg.connect(store_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        rows = [conn.execute(f'SELECT * FROM "{name}"').fetchall() for (name,) in tables]
    assert postgres.datadir is not None
    server_log = (postgres.datadir / "server.log").read_bytes()
    return repr(rows).encode() + server_log


def assert_nowhere(secrets: Secrets, places: dict[str, bytes]) -> None:
    found = [
        f"{what} in {where}"
        for what, secret in secrets.all().items()
        for where, data in places.items()
        if secret.encode() in data
    ]
    assert found == []


def test_secrets_appear_nowhere_in_plaintext(
    monitor: Monitor,
    bookstore_pb: ModuleType,
    store_url: str,
    logs: Captured,
    request: pytest.FixtureRequest,
) -> None:
    secrets = make_secrets(monitor.store)
    seen = asyncio.run(scenario(monitor, bookstore_pb, secrets))
    pg = request.getfixturevalue("postgres") if store_url.startswith("postgresql") else None
    database = database_text(store_url, pg)
    log_text = logs.text()

    # The searches see what they should: the key hashes, the access log, the masked keys.
    assert hash_key(secrets.valid).encode() in database
    assert f'"GET {REST_PATHS[GET_SHELF]} HTTP/1.1" 401' in log_text
    masked = f"{secrets.valid[:4]}...{secrets.valid[-4:]}"
    assert f'"masked_key":"{masked}"' in seen.admin_answers[0]
    assert "requires a valid API key" in "".join(seen.client_texts)

    assert_nowhere(
        secrets,
        {
            "the database": database,
            "the logs": log_text.encode(),
            "the admin API's answers": "\n".join(seen.admin_answers).encode(),
            "the answers to clients": "\n".join(seen.client_texts).encode(),
        },
    )


def test_hpack_logs_headers_without_their_values(
    tmp_path: Path, bookstore_pb: ModuleType, logs: Captured
) -> None:
    """hpack, under grpclib, logs at DEBUG each header it encodes or decodes and each raw header
    block. The filter that a Monitor and a Gateway attach (runtime/log_redaction.py) keeps the
    key's value out on every side: the client encodes it, the upstream decodes it twice (from
    the client, and from the proxy gateway, whose own channel is grpcio's: C-core's HPACK
    encoder logs nothing to Python)."""
    with Monitor(f"sqlite:///{tmp_path / 'hpack.db'}", require_keys=True) as monitor:
        _, secret = issue_keys(monitor.store, 1)[0]
        plan = [PlannedCall(GET_SHELF, secret, "hpack")]

        async def calls() -> list[str]:
            async with grpclib_port(monitor, make_test_service(bookstore_pb)) as port:
                direct = await grpc_client(port, bookstore_pb, plan)
                proxy = Gateway(upstream=f"127.0.0.1:{port}", packages=[bookstore_pb])
                with rest_server(proxy) as base:
                    proxied = await rest_client(base, plan)
            return [outcome.code for outcome in direct + proxied]

        assert asyncio.run(calls()) == ["OK", "OK"]
    hpack_log = logs.text(only=("hpack",))
    # The search sees what it should: the header by name, from the encoders and the decoder.
    assert hpack_log.count("x-api-key', '<redacted>')") >= 2  # decoded, by the upstream
    assert hpack_log.count("x-api-key'=<redacted>") >= 1  # added to a table, by the client
    assert secret not in logs.text()
