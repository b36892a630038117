"""Account deletion: asked for with the password, done after the grace period."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth import repository
from beatmachine.auth.exceptions import (
    InvalidCredentials,
)
from beatmachine.auth.service import _throttle as throttle
from beatmachine.auth.service._sessions import Client
from beatmachine.core.db import release_connection, transaction
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.users import service as users_service
from beatmachine.users.models import User

log = structlog.get_logger(__name__)


async def request_deletion(
    session: AsyncSession, state: AppState, user: User, password: str | None, client: Client
) -> None:
    """Schedule the account's removal after the grace period and end every session. The
    password is checked like a sign-in's: wrong ones count towards the same limits."""
    if user.password_hash is not None:
        await throttle.check_allowed(state, user.email, client.ip)
        # Only the authentication's own bookkeeping (last use of the session) is pending.
        await release_connection(session)
        check = await state.passwords.verify(user.password_hash, password or "")
        if not check.valid:
            await throttle.record_failure(state, user.email, client.ip)
            raise InvalidCredentials("The password is wrong.")
        await throttle.clear_account(state, user.email)
    now = utcnow()
    when = now + timedelta(seconds=state.settings.account_deletion_grace)
    await users_service.schedule_deletion(session, user, when)
    await repository.revoke_sessions(session, user_id=user.id, reason="account_deletion", now=now)


async def purge_deleted_accounts(state: AppState) -> int:
    """The periodic job: remove accounts whose grace period is over."""
    async with transaction(state.sessionmaker) as session:
        ids = await users_service.purge_deleted(session, utcnow(), state.before_account_purge)
    for user_id in ids:
        log.info("account_purged", user_id=user_id)
    return len(ids)
