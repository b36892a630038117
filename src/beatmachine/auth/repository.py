"""Queries of the auth domain that are more than one-liners."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.models import AuthSession, OAuthAccount, OneTimeToken, RefreshToken
from beatmachine.users.models import User


async def session_with_user(
    session: AsyncSession, session_id: str, user_id: str
) -> tuple[AuthSession, User] | None:
    """The session and its user in one query (every authenticated request runs it)."""
    result = await session.execute(
        select(AuthSession, User)
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.id == session_id, AuthSession.user_id == user_id)
    )
    row = result.unique().first()
    return None if row is None else (row[0], row[1])


async def user_of_identity(session: AsyncSession, provider: str, subject: str) -> User | None:
    """The account a provider identity is linked to, if any."""
    result = await session.execute(
        select(User)
        .join(OAuthAccount, OAuthAccount.user_id == User.id)
        .where(OAuthAccount.provider == provider, OAuthAccount.provider_user_id == subject)
    )
    return result.unique().scalar_one_or_none()


async def refresh_token_with_session(
    session: AsyncSession, token_hash: str
) -> tuple[RefreshToken, AuthSession] | None:
    """A refresh token and its session, the token row locked for the rotation."""
    result = await session.execute(
        select(RefreshToken, AuthSession)
        .join(AuthSession, AuthSession.id == RefreshToken.session_id)
        .where(RefreshToken.token_hash == token_hash)
        .with_for_update(of=RefreshToken)
    )
    row = result.first()
    return None if row is None else (row[0], row[1])


async def rotate_refresh_token(session: AsyncSession, token_id: str, now: datetime) -> bool:
    """Mark a refresh token used; False when another request rotated it first."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def revoke_sessions(
    session: AsyncSession,
    *,
    user_id: str,
    reason: str,
    now: datetime,
    session_id: str | None = None,
) -> None:
    """Revoke a user's sessions (one, or all), keeping why."""
    statement = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if session_id is not None:
        statement = statement.where(AuthSession.id == session_id)
    await session.execute(statement.values(revoked_at=now, revoked_reason=reason))


async def active_sessions(
    session: AsyncSession, user_id: str, now: datetime
) -> Sequence[AuthSession]:
    """A user's sessions neither revoked nor expired, most recently used first."""
    result = await session.execute(
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(AuthSession.last_used_at.desc())
    )
    return result.scalars().all()


async def claim_one_time_token(
    session: AsyncSession, token_hash: str, purpose: str, now: datetime
) -> OneTimeToken | None:
    """Use a one-time token atomically: exactly one concurrent caller gets it."""
    token = (
        await session.execute(
            select(OneTimeToken).where(
                OneTimeToken.token_hash == token_hash, OneTimeToken.purpose == purpose
            )
        )
    ).scalar_one_or_none()
    if token is None or token.used_at is not None or token.expires_at <= now:
        return None
    result = await session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.id == token.id, OneTimeToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    return token


async def expire_one_time_tokens(
    session: AsyncSession, user_id: str, purpose: str, now: datetime
) -> None:
    await session.execute(
        update(OneTimeToken)
        .where(
            OneTimeToken.user_id == user_id,
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
