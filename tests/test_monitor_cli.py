"""`restmon keys …` and `restmon admin …` against real SQLite and PostgreSQL stores."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from protoc_gen_restmon.monitor_cli import main
from protoc_gen_restmon.runtime.monitor.keys import hash_key, verify_password
from protoc_gen_restmon.runtime.monitor.model import Store
from protoc_gen_restmon.runtime.monitor.stores import open_store, sqlite_path
from tests.support.protoc_tools import REPO

SECRET_LINE = re.compile(r"^  (\S+)$", re.MULTILINE)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_text(url: str) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or every PostgreSQL row."""
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        rows = [
            str(row[0])
            for (table,) in tables
            for row in conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
        ]
    return "\n".join(rows).encode()


@pytest.fixture
def opened(store_url: str) -> Iterator[Store]:
    """The store the commands write to, opened again to read what they did."""
    store = open_store(store_url)
    try:
        yield store
    finally:
        store.close()


def create_key(capsys: pytest.CaptureFixture[str], url: str, *extra: str) -> tuple[int, str]:
    code, out, err = run(capsys, "keys", "create", "--db", url, *extra)
    assert code == 0, err
    [secret] = SECRET_LINE.findall(out)
    key_id = int(re.search(r"id: (\d+)", out).group(1))  # type: ignore[union-attr]
    return key_id, secret


def test_keys_create_shows_the_secret_once_and_stores_only_its_hash(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    store_url: str,
    opened: Store,
) -> None:
    caplog.set_level(logging.DEBUG)
    key_id, secret = create_key(
        capsys,
        store_url,
        *("--name", "Analytics", "--type", "service", "--user-id", "5"),
        *("--username", "svc", "--email", "svc@example.com", "--created-by", "ops"),
    )
    key = opened.key(key_id)
    assert key is not None
    assert (key.name, key.key_type.value, key.user_id, key.username) == (
        "Analytics",
        "service",
        5,
        "svc",
    )
    assert (key.user_email, key.created_by, key.expires_at) == ("svc@example.com", "ops", None)
    assert key.key_hash == hash_key(secret)
    assert secret.encode() not in stored_text(store_url)
    code, out, _ = run(capsys, "keys", "list", "--db", store_url)
    assert code == 0 and secret not in out and key.masked_key in out
    assert secret not in caplog.text


def test_keys_list_filters_and_json(
    capsys: pytest.CaptureFixture[str], store_url: str, opened: Store
) -> None:
    first, _ = create_key(capsys, store_url, "--name", "a", "--type", "cli", "--user-id", "1")
    second, _ = create_key(capsys, store_url, "--name", "b", "--type", "webhook")
    assert run(capsys, "keys", "revoke", "--db", store_url, str(second))[0] == 0

    def listed(*flags: str) -> list[int]:
        code, out, err = run(capsys, "keys", "list", "--db", store_url, "--json", *flags)
        assert code == 0, err
        answer = json.loads(out)
        assert answer["count"] == len(answer["results"])
        return sorted(row["id"] for row in answer["results"])

    assert listed() == [first, second]
    assert listed("--active") == [first]
    assert listed("--inactive") == [second]
    assert listed("--type", "webhook") == [second]
    assert listed("--user-id", "1") == [first]
    assert listed("--user-id", "2") == []


def test_keys_expire_and_revoke_change_validity(
    capsys: pytest.CaptureFixture[str], store_url: str, opened: Store
) -> None:
    expiring, _ = create_key(capsys, store_url, "--name", "e", "--type", "internal")
    revoked, _ = create_key(capsys, store_url, "--name", "r", "--type", "internal")
    assert run(capsys, "keys", "expire", "--db", store_url, str(expiring))[0] == 0
    assert run(capsys, "keys", "revoke", "--db", store_url, str(revoked))[0] == 0
    now = datetime.now(timezone.utc)
    expired_key, revoked_key = opened.key(expiring), opened.key(revoked)
    assert expired_key is not None and revoked_key is not None
    assert expired_key.is_active and not expired_key.is_valid(now + timedelta(seconds=1))
    assert not revoked_key.is_active


EXPIRIES = [
    pytest.param(("--expires-in", "2"), timedelta(days=2), id="in-days"),
    pytest.param(("--expires-at", "2099-01-02T03:04:05Z"), None, id="at-utc"),
    pytest.param(("--expires-at", "2099-01-02T05:04:05+02:00"), None, id="at-offset"),
]


@pytest.mark.parametrize(("flags", "delta"), EXPIRIES)
def test_keys_create_expiry(
    capsys: pytest.CaptureFixture[str],
    store_url: str,
    opened: Store,
    flags: tuple[str, str],
    delta: timedelta | None,
) -> None:
    before = datetime.now(timezone.utc)
    key_id, _ = create_key(capsys, store_url, "--name", "x", "--type", "cli", *flags)
    key = opened.key(key_id)
    assert key is not None and key.expires_at is not None
    if delta is None:
        assert key.expires_at == datetime(2099, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    else:
        assert before + delta <= key.expires_at <= datetime.now(timezone.utc) + delta


BAD_COMMANDS = [
    pytest.param(("keys", "revoke", "999"), "no API key with id 999", id="revoke-unknown"),
    pytest.param(("keys", "expire", "999"), "no API key with id 999", id="expire-unknown"),
    pytest.param(
        ("admin", "revoke-token", "999"), "no admin token with id 999", id="revoke-token-unknown"
    ),
    pytest.param(
        ("keys", "create", "--name", "x", "--type", "cli", "--expires-at", "tomorrow"),
        "is not an ISO 8601",
        id="bad-expires-at",
    ),
    pytest.param(
        ("keys", "create", "--name", "x", "--type", "cli", "--expires-at", "2099-01-01T00:00"),
        "has no time zone",
        id="naive-expires-at",
    ),
    pytest.param(
        ("keys", "create", "--name", "x", "--type", "cli", "--expires-in", "-1"),
        "positive number of days",
        id="negative-expires-in",
    ),
]


@pytest.mark.parametrize(("argv", "message"), BAD_COMMANDS)
def test_user_errors_exit_1_with_a_message(
    capsys: pytest.CaptureFixture[str], store_url: str, argv: tuple[str, ...], message: str
) -> None:
    code, _, err = run(capsys, *argv, "--db", store_url)
    assert code == 1
    assert err.startswith("restmon: ") and message in err


BAD_ARGS = [
    pytest.param(("keys", "create", "--name", "x", "--type", "bogus"), id="unknown-type"),
    pytest.param(("keys", "create", "--type", "cli"), id="missing-name"),
    pytest.param(("keys", "revoke", "abc"), id="non-integer-id"),
    pytest.param(("keys", "list", "--active", "--inactive"), id="active-and-inactive"),
    pytest.param(
        (
            "keys",
            "create",
            "--name",
            "x",
            "--type",
            "cli",
            "--expires-in",
            "1",
            "--expires-at",
            "2099-01-01T00:00Z",
        ),
        id="two-expiries",
    ),
    pytest.param(("admin",), id="no-action"),
]


@pytest.mark.parametrize("argv", BAD_ARGS)
def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2


def test_unknown_store_url_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "admin", "tokens", "--db", "mysql://nowhere/db")
    assert code == 1 and "unknown store" in err


def test_db_defaults_to_restmon_db_env(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("RESTMON_DB", url)
    assert run(capsys, "admin", "create-token", "ci")[0] == 0
    store = open_store(url)
    try:
        assert [t.name for t in store.admin_tokens()] == ["ci"]
    finally:
        store.close()


def test_db_defaults_to_restmon_db_in_the_working_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RESTMON_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "admin", "create-token", "local")[0] == 0
    assert (tmp_path / "restmon.db").is_file()


def test_admin_tokens_are_shown_once_stored_hashed_and_revocable(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    store_url: str,
    opened: Store,
) -> None:
    caplog.set_level(logging.DEBUG)
    code, out, _ = run(capsys, "admin", "create-token", "deploy", "--db", store_url)
    assert code == 0
    [secret] = SECRET_LINE.findall(out)
    token = opened.admin_token_by_hash(hash_key(secret))
    assert token is not None and token.name == "deploy" and token.is_active
    assert secret.encode() not in stored_text(store_url)
    code, out, _ = run(capsys, "admin", "tokens", "--db", store_url)
    assert code == 0 and "deploy" in out and secret not in out
    assert run(capsys, "admin", "revoke-token", str(token.id), "--db", store_url)[0] == 0
    revoked = opened.admin_token_by_hash(hash_key(secret))
    assert revoked is not None and not revoked.is_active
    assert secret not in caplog.text


def test_admin_set_password_from_stdin(
    capsys: pytest.CaptureFixture[str],
    store_url: str,
    opened: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = "correct horse battery staple"
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    code, out, _ = run(
        capsys, "admin", "set-password", "root", "--password-stdin", "--db", store_url
    )
    assert code == 0 and password not in out
    stored = opened.admin_password_hash("root")
    assert stored is not None and verify_password(password, stored)
    assert not verify_password("wrong", stored)
    assert password.encode() not in stored_text(store_url)


def test_admin_set_password_refuses_an_empty_one(
    capsys: pytest.CaptureFixture[str], store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    code, _, err = run(
        capsys, "admin", "set-password", "root", "--password-stdin", "--db", store_url
    )
    assert code == 1 and "empty password" in err


PROMPTS = [
    pytest.param("s3cret\ns3cret\n", 0, id="twice-the-same"),
    pytest.param("s3cret\nother\n", 1, id="different"),
]


@pytest.mark.parametrize(("typed", "status"), PROMPTS)
def test_admin_set_password_prompts_twice(tmp_path: Path, typed: str, status: int) -> None:
    """A real process without a terminal: getpass reads the two answers from stdin."""
    url = f"sqlite:///{tmp_path / 'prompt.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "protoc_gen_restmon.monitor_cli", "admin", "set-password", "ops"],
        input=typed,
        cwd=REPO,
        env={**os.environ, "RESTMON_DB": url},
        capture_output=True,
        text=True,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
        check=False,
    )
    assert result.returncode == status, result.stderr
    store = open_store(url)
    try:
        stored = store.admin_password_hash("ops")
    finally:
        store.close()
    assert (stored is not None and verify_password("s3cret", stored)) == (status == 0)
    assert "s3cret" not in result.stdout
