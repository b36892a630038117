"""Password hashing (Argon2id; bcrypt verified for migrated accounts), access JWTs and
secret tokens."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.to_thread
import bcrypt
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from beatmachine.core.ids import utcnow

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "beatmachine"


@dataclass(frozen=True)
class PasswordCheck:
    valid: bool
    needs_rehash: bool


class PasswordHasherService:
    """Argon2id for new hashes; bcrypt (`$2a$`/`$2b$`/`$2y$`) hashes are still verified.

    Hashing is CPU-bound, so every call runs in a worker thread, never on the loop.
    """

    def __init__(self, *, time_cost: int, memory_cost: int) -> None:
        self._argon2 = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)
        # One hash per core at a time: a burst of sign-ins queues instead of running
        # dozens of memory-hard hashes at once (each takes `memory_cost` KiB).
        self._slots = anyio.CapacityLimiter(os.cpu_count() or 1)
        # Verified against when the account does not exist, so that an unknown
        # e-mail costs the same as a known one.
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(16))

    @property
    def slots(self) -> anyio.CapacityLimiter:
        """The hashing slots every hash and check waits for."""
        return self._slots

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._argon2.hash, password, limiter=self._slots)

    async def verify(self, password_hash: str | None, password: str) -> PasswordCheck:
        return await anyio.to_thread.run_sync(
            self._verify_sync, password_hash, password, limiter=self._slots
        )

    def _verify_sync(self, password_hash: str | None, password: str) -> PasswordCheck:
        if password_hash is None:
            self._verify_argon2(self._dummy_hash, password)
            return PasswordCheck(valid=False, needs_rehash=False)
        if password_hash.startswith(("$2a$", "$2b$", "$2y$")):
            try:
                valid = bcrypt.checkpw(password.encode(), password_hash.encode())
            except ValueError:
                valid = False
            return PasswordCheck(valid=valid, needs_rehash=valid)
        valid = self._verify_argon2(password_hash, password)
        return PasswordCheck(
            valid=valid, needs_rehash=valid and self._argon2.check_needs_rehash(password_hash)
        )

    def _verify_argon2(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    expires_at: datetime


class InvalidToken(Exception):
    """The access token is malformed, forged, of the wrong kind or expired."""


def create_access_token(
    secret: str, *, user_id: str, session_id: str, lifetime_seconds: int
) -> tuple[str, datetime]:
    now = utcnow()
    expires_at = now + timedelta(seconds=lifetime_seconds)
    payload: dict[str, Any] = {
        "iss": JWT_ISSUER,
        "sub": user_id,
        "sid": session_id,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": secrets.token_urlsafe(8),
    }
    return jwt.encode(payload, secret, algorithm=JWT_ALGORITHM), expires_at


def decode_access_token(secret: str, token: str) -> AccessClaims:
    """Verify signature, algorithm, issuer, expiry and kind; raise `InvalidToken` otherwise."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if (
        payload.get("typ") != "access"
        or not isinstance(payload["sub"], str)
        or not isinstance(payload["sid"], str)
    ):
        raise InvalidToken("not an access token")
    return AccessClaims(
        user_id=payload["sub"],
        session_id=payload["sid"],
        expires_at=datetime.fromtimestamp(payload["exp"]).astimezone(),
    )


def new_secret_token() -> str:
    """A URL-safe single-use secret (refresh, reset, verification tokens)."""
    return secrets.token_urlsafe(32)


def hash_secret_token(token: str) -> str:
    """Tokens are stored only as their SHA-256; they are random, so no salt is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equals(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
