"""Admin authentication: HTTP Basic against the stored password hash, or an admin bearer token.

API keys are not admin credentials: an `X-Api-Key` header is ignored here, and an API key sent
as a bearer token is not found among the admin tokens, so both are a 401.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

from protoc_gen_restmon.runtime.monitor.keys import hash_key, hash_password, verify_password
from protoc_gen_restmon.runtime.monitor.model import AdminToken, Store, StoreError
from protoc_gen_restmon.runtime.status import Code, RpcError

__all__ = ["CHALLENGE", "AdminAuth", "create_admin_token", "unauthorized"]

CHALLENGE = 'Basic realm="restmon", Bearer realm="restmon"'


def unauthorized(message: str) -> RpcError:
    return RpcError(Code.UNAUTHENTICATED, message, headers=(("www-authenticate", CHALLENGE),))


class AdminAuth:
    """Checks an `Authorization` header against a store's admin credentials.

    Password hashes are slow on purpose (scrypt), so a successful Basic check is remembered for
    `cache_seconds`, keyed by a SHA-256 of the user, the password and the stored hash: the
    plaintext is never kept, and changing the password invalidates the entry at once.

    The store is always asked first (a revoked token or a changed password takes effect at
    once). Only when it cannot answer (`StoreError`) are credentials accepted that succeeded
    within `cache_seconds` — remembered by digest only — so that an admin can still read
    `health` while the store is down; other requests then get the StoreError (a 503).
    """

    def __init__(
        self,
        store: Store,
        *,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._verified: dict[bytes, float] = {}
        # An unknown user is checked against this hash (of a random password), so that it
        # costs as much as a wrong password: response times do not tell which users exist.
        self._decoy: str | None = None

    async def check(self, authorization: str | None) -> None:
        """Return when the header carries valid admin credentials; raise a 401 otherwise."""
        if not authorization:
            raise unauthorized("admin credentials required")
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            ok = await self._basic(credentials.strip())
        elif scheme == "bearer":
            ok = await asyncio.to_thread(self._bearer, credentials.strip())
        else:
            ok = False
        if not ok:
            raise unauthorized("invalid admin credentials")

    def _bearer(self, token: str) -> bool:
        if not token:
            return False
        digest = hash_key(token)
        remembered = _fallback_key("bearer", digest)
        try:
            found = self.store.admin_token_by_hash(digest)
        except StoreError:
            if self._remembered(remembered):
                return True
            raise
        ok = (
            found is not None
            and found.is_active
            and hmac.compare_digest(found.token_hash.encode(), digest.encode())
        )
        if ok:
            self._remember(remembered)
        return ok

    async def _basic(self, credentials: str) -> bool:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, colon, password = decoded.partition(":")
        if not colon:
            return False
        remembered = _fallback_key("basic", username, password)
        try:
            stored = await asyncio.to_thread(self.store.admin_password_hash, username)
        except StoreError:
            if self._remembered(remembered):
                return True
            raise
        if stored is None:
            await asyncio.to_thread(self._check_decoy, password)
            return False
        key = _cache_key(username, password, stored)
        if self._remembered(key):
            return True
        if not await asyncio.to_thread(verify_password, password, stored):
            return False
        self._remember(key)
        self._remember(remembered)
        return True

    def _remembered(self, key: bytes) -> bool:
        expiry = self._verified.get(key)
        return expiry is not None and expiry > self.clock()

    def _remember(self, key: bytes) -> None:
        now = self.clock()
        self._forget_expired(now)
        self._verified[key] = now + self.cache_seconds

    def _check_decoy(self, password: str) -> None:
        if self._decoy is None:
            self._decoy = hash_password(secrets.token_urlsafe(16))
        verify_password(password, self._decoy)

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, expiry in self._verified.items() if expiry <= now]:
            del self._verified[key]


def _fallback_key(*parts: str) -> bytes:
    """What a success is remembered under for store outages: a digest, never the secret."""
    return hashlib.sha256(json.dumps(["fallback", *parts]).encode()).digest()


def _cache_key(username: str, password: str, stored: str) -> bytes:
    # JSON keeps the parts apart (a NUL-joined string would let "a\0b" + "c" equal "a" + "b\0c").
    return hashlib.sha256(json.dumps([username, password, stored]).encode()).digest()


def create_admin_token(store: Store, name: str) -> tuple[AdminToken, str]:
    """A new admin bearer token: (its row, the secret). Only the secret's hash is stored; the
    secret is returned once, for the caller to show."""
    secret = f"rma_{secrets.token_urlsafe(32)}"
    return store.create_admin_token(name, hash_key(secret)), secret
