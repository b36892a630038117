"""Sign-up and sign-in with a password."""

from __future__ import annotations

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.exceptions import (
    InvalidCredentials,
    UserExists,
)
from beatmachine.auth.service import _throttle as throttle
from beatmachine.auth.service._one_time import send_verification_email
from beatmachine.auth.service._sessions import Client, IssuedTokens, start_session
from beatmachine.core.db import release_connection
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.users import service as users_service
from beatmachine.users.models import User

log = structlog.get_logger(__name__)


LOGIN_CHECK_ATTEMPTS = 2


async def register(
    session: AsyncSession,
    state: AppState,
    *,
    email: str,
    password: str,
    display_name: str,
    client: Client,
) -> tuple[User, IssuedTokens]:
    """Create an account, sign it in and send the verification e-mail."""
    # Hashed before the database is asked anything, so no connection waits on the
    # hash; a taken e-mail then costs the same time as a free one.
    password_hash = await state.passwords.hash(password)
    if await users_service.find_by_email(session, email) is not None:
        raise UserExists()
    try:
        async with session.begin_nested():
            user = await users_service.create_user(
                session,
                email=email,
                display_name=display_name,
                password_hash=password_hash,
                method="password",
            )
    except IntegrityError as exc:  # a concurrent registration took the email first
        raise UserExists() from exc
    users_service.mark_active(session, user.id, user.created_at)
    tokens = await start_session(session, state, user, client)
    await send_verification_email(session, state, user)
    return user, tokens


async def login(
    session: AsyncSession, state: AppState, *, email: str, password: str, client: Client
) -> tuple[User, IssuedTokens]:
    """Check the password (Argon2id or bcrypt), throttle failures, open a session.

    Signing in during the deletion grace period cancels the deletion.
    """
    email = users_service.normalise_email(email)
    await throttle.check_allowed(state, email, client.ip)
    user = await users_service.find_by_email(session, email)
    checked_hash = user.password_hash if user else None
    # Checking a password can wait for a hashing slot: no connection is held meanwhile,
    # so the account is read again after, and checked again if its hash changed then
    # (a password reset, or another sign-in that upgraded the same hash).
    for _attempt in range(LOGIN_CHECK_ATTEMPTS):
        await release_connection(session)
        check = await state.passwords.verify(checked_hash, password)
        if user is None or not check.valid:
            await throttle.record_failure(state, email, client.ip)
            raise InvalidCredentials()
        new_hash = await state.passwords.hash(password) if check.needs_rehash else None
        user = await session.get(User, user.id, populate_existing=True)
        if user is None:  # removed meanwhile
            raise InvalidCredentials()
        if user.password_hash == checked_hash:
            break
        checked_hash = user.password_hash
    else:
        raise InvalidCredentials()
    await throttle.clear_account(state, email)
    if new_hash is not None:
        user.password_hash = new_hash
    if user.deletion_scheduled_at is not None:
        await users_service.cancel_deletion(session, user)
        log.info("account_deletion_cancelled", user_id=user.id)
    user.last_login_at = utcnow()
    users_service.mark_active(session, user.id, user.last_login_at)
    tokens = await start_session(session, state, user, client)
    return user, tokens
