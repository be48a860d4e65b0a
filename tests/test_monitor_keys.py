"""API key secrets, the verifier (against real stores) and admin password hashing."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_restmon.runtime.monitor.keys import (
    EXPIRED,
    MISSING,
    REVOKED,
    UNKNOWN,
    KeyRejected,
    KeyVerifier,
    create_api_key,
    generate_key,
    hash_key,
    hash_password,
    verify_password,
)
from protoc_gen_restmon.runtime.monitor.model import KeyType, Store, StoreError

NOW = datetime.now(timezone.utc)


def test_generate_key_shape_and_uniqueness() -> None:
    keys = {generate_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(re.fullmatch(r"rm_[A-Za-z0-9_-]{40}", key) for key in keys)


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("rm_abc") == hashlib.sha256(b"rm_abc").hexdigest()


def test_create_api_key_stores_only_the_hash(store: Store) -> None:
    key, secret = create_api_key(
        store, "ci", KeyType.CLI, user_id=4, username="ada", created_by="admin"
    )
    assert key.key_hash == hash_key(secret)
    assert key.masked_key == f"{secret[:4]}...{secret[-4:]}"
    assert (key.name, key.key_type, key.user_id, key.created_by) == ("ci", KeyType.CLI, 4, "admin")
    assert secret not in repr(store.keys())
    assert store.key_by_hash(hash_key(secret)) == key


# The verifier.


def test_verify_accepts_valid_key(store: Store) -> None:
    key, secret = create_api_key(store, "svc", KeyType.SERVICE, expires_at=NOW + timedelta(days=1))
    assert KeyVerifier(store).verify(secret, NOW) == key


@pytest.mark.parametrize("secret", [None, ""], ids=["none", "empty"])
def test_verify_rejects_missing_key(store: Store, secret: str | None) -> None:
    with pytest.raises(KeyRejected) as rejected:
        KeyVerifier(store).verify(secret, NOW)
    assert rejected.value.reason == MISSING


def test_verify_rejects_unknown_key(store: Store) -> None:
    create_api_key(store, "svc", KeyType.SERVICE)
    with pytest.raises(KeyRejected) as rejected:
        KeyVerifier(store).verify(generate_key(), NOW)
    assert rejected.value.reason == UNKNOWN


def test_verify_rejects_revoked_key(store: Store) -> None:
    key, secret = create_api_key(store, "svc", KeyType.SERVICE)
    store.revoke_key(key.id)
    with pytest.raises(KeyRejected) as rejected:
        KeyVerifier(store).verify(secret, NOW)
    assert rejected.value.reason == REVOKED


def test_verify_rejects_expired_key_at_expiry(store: Store) -> None:
    _, secret = create_api_key(store, "svc", KeyType.SERVICE, expires_at=NOW)
    verifier = KeyVerifier(store)
    verifier.verify(secret, NOW - timedelta(microseconds=1))
    with pytest.raises(KeyRejected) as rejected:
        verifier.verify(secret, NOW)  # the cached key, but its expiry is checked every time
    assert rejected.value.reason == EXPIRED


def test_reasons_are_distinct() -> None:
    assert len({MISSING, UNKNOWN, REVOKED, EXPIRED}) == 4


def test_cache_serves_without_the_database(store: Store) -> None:
    key, secret = create_api_key(store, "svc", KeyType.SERVICE)
    verifier = KeyVerifier(store, cache_seconds=60)
    verifier.verify(secret, NOW)
    store.close()  # any further lookup would raise StoreError
    assert verifier.verify(secret, NOW) == key
    with pytest.raises(StoreError):
        verifier.verify(generate_key(), NOW)


def test_revocation_takes_effect_after_cache_seconds(store: Store) -> None:
    key, secret = create_api_key(store, "svc", KeyType.SERVICE)
    verifier = KeyVerifier(store, cache_seconds=0.3)
    verifier.verify(secret, NOW)
    store.revoke_key(key.id)
    assert verifier.verify(secret, NOW) == key  # still cached
    time.sleep(0.35)
    with pytest.raises(KeyRejected, match=REVOKED):
        verifier.verify(secret, NOW)


def test_zero_cache_seconds_sees_revocation_at_once(store: Store) -> None:
    key, secret = create_api_key(store, "svc", KeyType.SERVICE)
    verifier = KeyVerifier(store, cache_seconds=0)
    verifier.verify(secret, NOW)
    store.revoke_key(key.id)
    with pytest.raises(KeyRejected, match=REVOKED):
        verifier.verify(secret, NOW)


def test_cache_is_bounded(store: Store) -> None:
    verifier = KeyVerifier(store, cache_seconds=60, max_entries=10)
    for _ in range(25):
        with pytest.raises(KeyRejected):
            verifier.verify(generate_key(), NOW)
    assert len(verifier._cache) <= 10


# Admin passwords.


@settings(max_examples=5, deadline=None)  # scrypt costs ~50 ms per hash, by design
@given(password=st.text(min_size=1, max_size=30), other=st.text(max_size=30))
def test_password_round_trip(password: str, other: str) -> None:
    stored = hash_password(password)
    assert verify_password(password, stored)
    assert verify_password(other, stored) == (other == password)


def test_password_hash_format_and_salt() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second  # a fresh salt each time
    assert re.fullmatch(r"scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+", first)


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("", id="empty"),
        pytest.param("scrypt$16384$8$1$c2FsdA==", id="too-few-fields"),
        pytest.param("bcrypt$16384$8$1$c2FsdA==$aGFzaA==", id="other-scheme"),
        pytest.param("scrypt$1000$8$1$c2FsdA==$aGFzaA==", id="n-not-power-of-two"),
        pytest.param("scrypt$16384$8$1$!!!$aGFzaA==", id="bad-base64"),
        pytest.param("scrypt$x$8$1$c2FsdA==$aGFzaA==", id="bad-number"),
    ],
)
def test_malformed_password_hash_refuses(stored: str) -> None:
    assert verify_password("pw", stored) is False
