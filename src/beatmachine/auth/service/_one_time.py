"""Single-use tokens mailed as links: password reset and e-mail verification."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth import repository
from beatmachine.auth.exceptions import (
    InvalidToken,
)
from beatmachine.auth.models import OneTimeToken
from beatmachine.auth.service import _throttle as throttle
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.security import (
    hash_secret_token,
    new_secret_token,
)
from beatmachine.core.state import AppState
from beatmachine.users import service as users_service
from beatmachine.users.models import User

log = structlog.get_logger(__name__)


RESET_PURPOSE = "password_reset"


VERIFY_PURPOSE = "email_verification"


async def _new_one_time_token(
    session: AsyncSession, user: User, purpose: str, lifetime_seconds: int
) -> str:
    raw = new_secret_token()
    now = utcnow()
    session.add(
        OneTimeToken(
            id=new_id("ott"),
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_secret_token(raw),
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime_seconds),
        )
    )
    await session.flush()
    return raw


def _mail(session: AsyncSession, state: AppState, to: str, subject: str, text: str) -> None:
    state.mailer.queue(session, state.mailer.compose(to, subject, text))


def _app_link(state: AppState, path: str, token: str) -> str:
    return f"{state.settings.app_url.rstrip('/')}/{path}?token={token}"


async def forgot_password(session: AsyncSession, state: AppState, email: str) -> None:
    """Mail a reset link when the account exists; the caller answers the same either way."""
    user = await users_service.find_by_email(session, email)
    if user is None or user.deletion_scheduled_at is not None:
        log.info("password_reset_unknown_email")
        return
    raw = await _new_one_time_token(session, user, RESET_PURPOSE, state.settings.password_reset_ttl)
    minutes = state.settings.password_reset_ttl // 60
    _mail(
        session,
        state,
        user.email,
        "Reset your Beat Machine password",
        f"Hello {user.display_name},\n\n"
        f"Someone asked to reset the password of your Beat Machine account.\n"
        f"Open this link within {minutes} minutes to choose a new one:\n\n"
        f"{_app_link(state, 'reset-password', raw)}\n\n"
        "If it was not you, ignore this message; your password stays as it is.\n",
    )


async def reset_password(
    session: AsyncSession, state: AppState, *, raw_token: str, new_password: str
) -> None:
    """Set a new password with a single-use token; every session of the account ends."""
    # Hashed first: claiming the token starts a write that must not wait on the hash.
    password_hash = await state.passwords.hash(new_password)
    now = utcnow()
    token = await repository.claim_one_time_token(
        session, hash_secret_token(raw_token), RESET_PURPOSE, now
    )
    if token is None:
        raise InvalidToken("The reset link is invalid, used or expired; ask for a new one.")
    user = await session.get(User, token.user_id)
    if user is None:
        raise InvalidToken()
    user.password_hash = password_hash
    user.updated_at = now
    await repository.expire_one_time_tokens(session, user.id, RESET_PURPOSE, now)
    await repository.revoke_sessions(session, user_id=user.id, reason="password_reset", now=now)
    await throttle.clear_account(state, user.email)


async def send_verification_email(session: AsyncSession, state: AppState, user: User) -> None:
    """Mail a verification link, unless the address is confirmed already."""
    if user.email_verified_at is not None:
        return
    raw = await _new_one_time_token(
        session, user, VERIFY_PURPOSE, state.settings.email_verification_ttl
    )
    _mail(
        session,
        state,
        user.email,
        "Confirm your e-mail for the Beat Machine",
        f"Hello {user.display_name},\n\nConfirm your e-mail address with this link:\n\n"
        f"{_app_link(state, 'verify-email', raw)}\n",
    )


async def verify_email(session: AsyncSession, raw_token: str) -> User:
    """Confirm the address the token was mailed to; the token is used up."""
    now = utcnow()
    token = await repository.claim_one_time_token(
        session, hash_secret_token(raw_token), VERIFY_PURPOSE, now
    )
    user = None if token is None else await session.get(User, token.user_id)
    if user is None:
        raise InvalidToken("The verification link is invalid, used or expired.")
    if user.email_verified_at is None:
        user.email_verified_at = now
    return user
