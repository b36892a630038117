"""Sessions (one per signed-in device) and their tokens: minted, checked on every
request, rotated, revoked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth import repository
from beatmachine.auth.exceptions import (
    InvalidRefreshToken,
    RefreshTokenReused,
    SessionNotFound,
    TokenRevoked,
)
from beatmachine.auth.models import AuthSession, RefreshToken
from beatmachine.core.errors import AuthRequired
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.security import (
    InvalidToken as InvalidJwt,
)
from beatmachine.core.security import (
    create_access_token,
    decode_access_token,
    hash_secret_token,
    new_secret_token,
)
from beatmachine.core.state import AppState
from beatmachine.users import service as users_service
from beatmachine.users.models import User

log = structlog.get_logger(__name__)


# How stale `last_used_at` may get before a request refreshes it (saves a write per request).
LAST_USED_RESOLUTION = timedelta(minutes=5)


@dataclass(frozen=True)
class Client:
    """Who is calling: used for session records and login throttling."""

    ip: str
    user_agent: str | None


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str


@dataclass(frozen=True)
class Authenticated:
    user: User
    session: AuthSession


async def _issue_refresh_token(session: AsyncSession, session_id: str) -> str:
    raw = new_secret_token()
    session.add(
        RefreshToken(id=new_id("rft"), session_id=session_id, token_hash=hash_secret_token(raw))
    )
    await session.flush()
    return raw


def _access_token(state: AppState, user_id: str, session_id: str) -> str:
    token, _ = create_access_token(
        state.jwt_secret,
        user_id=user_id,
        session_id=session_id,
        lifetime_seconds=state.settings.jwt_expires_in,
    )
    return token


async def start_session(
    session: AsyncSession, state: AppState, user: User, client: Client
) -> IssuedTokens:
    """Open a new session (a refresh-token family) and mint its first tokens."""
    now = utcnow()
    auth_session = AuthSession(
        id=new_id("ses"),
        user_id=user.id,
        ip=client.ip[:64],
        user_agent=(client.user_agent or "")[:512] or None,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=state.settings.refresh_token_ttl),
    )
    session.add(auth_session)
    await session.flush()
    refresh = await _issue_refresh_token(session, auth_session.id)
    return IssuedTokens(
        access_token=_access_token(state, user.id, auth_session.id),
        refresh_token=refresh,
        expires_in=state.settings.jwt_expires_in,
        session_id=auth_session.id,
    )


async def authenticate(session: AsyncSession, state: AppState, token: str) -> Authenticated:
    """Resolve an access token to its live session and user, or raise 401.

    Checked against the database on every request, so that a logout or a
    revocation takes effect at once in every API process.
    """
    try:
        claims = decode_access_token(state.jwt_secret, token)
    except InvalidJwt as exc:
        raise AuthRequired("The access token is invalid or has expired.") from exc
    found = await repository.session_with_user(session, claims.session_id, claims.user_id)
    if found is None:
        raise TokenRevoked()
    auth_session, user = found
    now = utcnow()
    if auth_session.revoked_at is not None or auth_session.expires_at <= now:
        raise TokenRevoked()
    if user.deletion_scheduled_at is not None:
        raise TokenRevoked()
    first_use_today = now.date() != auth_session.last_used_at.date()
    if first_use_today:
        users_service.mark_active(session, user.id, now)
    # Refreshed on a new day too, so the day's first use is recorded once.
    if first_use_today or now - auth_session.last_used_at > LAST_USED_RESOLUTION:
        auth_session.last_used_at = now
    return Authenticated(user=user, session=auth_session)


async def refresh(
    session: AsyncSession, state: AppState, raw_token: str, client: Client
) -> IssuedTokens:
    """Rotate a refresh token. A token that was already rotated means it leaked:
    the whole session (family) is revoked."""
    now = utcnow()
    found = await repository.refresh_token_with_session(session, hash_secret_token(raw_token))
    if found is None:
        raise InvalidRefreshToken()
    token, auth_session = found
    if auth_session.revoked_at is not None or auth_session.expires_at <= now:
        raise InvalidRefreshToken()
    if token.rotated_at is not None or not await repository.rotate_refresh_token(
        session, token.id, now
    ):
        await repository.revoke_sessions(
            session,
            user_id=auth_session.user_id,
            session_id=auth_session.id,
            reason="refresh_reuse",
            now=now,
        )
        log.warning("refresh_token_reuse", session_id=auth_session.id, user_id=auth_session.user_id)
        raise RefreshTokenReused()
    if now.date() != auth_session.last_used_at.date():
        users_service.mark_active(session, auth_session.user_id, now)
    auth_session.last_used_at = now
    auth_session.ip = client.ip[:64]
    new_refresh = await _issue_refresh_token(session, auth_session.id)
    return IssuedTokens(
        access_token=_access_token(state, auth_session.user_id, auth_session.id),
        refresh_token=new_refresh,
        expires_in=state.settings.jwt_expires_in,
        session_id=auth_session.id,
    )


async def logout(session: AsyncSession, auth: Authenticated) -> None:
    """End the caller's session: its tokens stop working at once, in every process."""
    await repository.revoke_sessions(
        session, user_id=auth.user.id, session_id=auth.session.id, reason="logout", now=utcnow()
    )


async def list_sessions(session: AsyncSession, user: User) -> list[AuthSession]:
    """The caller's active sessions, most recently used first."""
    return list(await repository.active_sessions(session, user.id, utcnow()))


async def revoke_session(session: AsyncSession, user: User, session_id: str) -> None:
    """Revoke one of the caller's own sessions; someone else's is `SessionNotFound`."""
    target = await session.get(AuthSession, session_id)
    if target is None or target.user_id != user.id or target.revoked_at is not None:
        raise SessionNotFound()
    await repository.revoke_sessions(
        session, user_id=user.id, session_id=session_id, reason="revoked", now=utcnow()
    )
