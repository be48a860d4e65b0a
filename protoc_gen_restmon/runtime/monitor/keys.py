"""API key secrets and admin passwords: generating, hashing, verifying.

Key secrets are 240 random bits, so a plain SHA-256 is a safe hash for them (no dictionary to
try); admin passwords are chosen by people, so they get scrypt with a random salt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from datetime import datetime

from protoc_gen_restmon.runtime.monitor.model import ApiKey, KeyType, NewApiKey, Store

KEY_PREFIX = "rm_"
_SHOWN = 4  # characters kept at each end for `masked_key`

# The reasons a key is refused; the interceptors put them in the UNAUTHENTICATED message.
MISSING = "missing API key"
UNKNOWN = "unknown API key"
REVOKED = "revoked API key"
EXPIRED = "expired API key"


class KeyRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def generate_key() -> str:
    """`rm_` and 40 URL-safe characters (240 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(30)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    store: Store,
    name: str,
    key_type: KeyType,
    *,
    user_id: int | None = None,
    username: str = "",
    user_email: str = "",
    expires_at: datetime | None = None,
    created_by: str = "",
) -> tuple[ApiKey, str]:
    """A new active key and its secret, which is not stored and cannot be shown again."""
    secret = generate_key()
    new = NewApiKey(
        name=name,
        key_type=key_type,
        key_hash=hash_key(secret),
        key_prefix=secret[:_SHOWN],
        key_suffix=secret[-_SHOWN:],
        user_id=user_id,
        username=username,
        user_email=user_email,
        expires_at=expires_at,
        created_by=created_by,
    )
    return store.create_key(new), secret


class KeyVerifier:
    """Checks secrets against the store, remembering each lookup for `cache_seconds`, so the
    hot path does not query the database per call. A revocation or expiry made through the
    store therefore takes effect within `cache_seconds` (expiry times themselves are checked
    on every call); 0 disables the cache. Unknown secrets are remembered too, so guessing
    does not load the database; the cache holds at most `max_entries` secrets."""

    def __init__(self, store: Store, cache_seconds: float = 1.0, max_entries: int = 10_000) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def verify(self, secret: str | None, now: datetime) -> ApiKey:
        """The key for `secret`, valid at `now`; raises `KeyRejected` otherwise."""
        if not secret:
            raise KeyRejected(MISSING)
        digest = hash_key(secret)
        key = self._lookup(digest)
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            raise KeyRejected(UNKNOWN)
        if not key.is_active:
            raise KeyRejected(REVOKED)
        if key.expires_at is not None and key.expires_at <= now:
            raise KeyRejected(EXPIRED)
        return key

    def _lookup(self, digest: str) -> ApiKey | None:
        if self.cache_seconds <= 0:
            return self.store.key_by_hash(digest)
        clock = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[0] > clock:
            return cached[1]
        key = self.store.key_by_hash(digest)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[digest] = (clock + self.cache_seconds, key)
        return key


# scrypt parameters: N=2^14, r=8, p=1 costs ~16 MiB and ~50 ms, the interactive-login setting.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$<salt, base64>$<hash, base64>` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (from `hash_password`); False for a malformed
    `stored` value rather than an error, so a damaged row just refuses the login."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
