"""Sign-in with a verified OAuth identity: the account it is linked to, one whose
verified e-mail it shares, or a new one."""

from __future__ import annotations

import structlog
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth import repository
from beatmachine.auth.exceptions import (
    InvalidToken,
)
from beatmachine.auth.models import OAuthAccount
from beatmachine.auth.oauth import ProviderIdentity
from beatmachine.auth.service._sessions import Client, IssuedTokens, start_session
from beatmachine.core.errors import ValidationFailed
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.state import AppState
from beatmachine.users import service as users_service
from beatmachine.users.models import User

log = structlog.get_logger(__name__)


async def oauth_sign_in(
    session: AsyncSession, state: AppState, identity: ProviderIdentity, client: Client
) -> tuple[User, IssuedTokens, bool]:
    """Sign in with a verified provider identity.

    A known `(provider, subject)` signs in its account; else a verified e-mail that
    matches an account links to it; else a new account is created.
    """
    user, created = await _account_for_identity(session, state, identity)
    if user.deletion_scheduled_at is not None:
        await users_service.cancel_deletion(session, user)
    user.last_login_at = utcnow()
    users_service.mark_active(session, user.id, user.last_login_at)
    tokens = await start_session(session, state, user, client)
    return user, tokens, created


async def _account_for_identity(
    session: AsyncSession, state: AppState, identity: ProviderIdentity
) -> tuple[User, bool]:
    for _attempt in range(2):
        linked = await repository.user_of_identity(session, identity.provider, identity.subject)
        if linked is not None:
            return linked, False
        if not identity.email:
            raise ValidationFailed(
                "The provider did not share an e-mail address; allow it and try again.",
                details={"fields": [{"field": "email", "message": "missing", "type": "missing"}]},
            )
        # Read before the savepoint: on SQLite a read inside it pins a snapshot, and the
        # insert then fails with "database is locked" once a concurrent sign-in commits.
        user = await users_service.find_by_email(session, identity.email)
        if user is not None and not identity.email_verified:
            raise ValidationFailed(
                "The provider has not verified this e-mail; sign in with your password.",
            )
        try:
            async with session.begin_nested():
                created = user is None
                if user is None:
                    user = await users_service.create_user(
                        session,
                        email=identity.email,
                        display_name=(identity.name or identity.email.split("@")[0])[:100],
                        password_hash=None,
                        method=identity.provider,
                        email_verified=identity.email_verified,
                    )
                elif user.email_verified_at is None:
                    # Nobody had proved owning this address: whoever registered it (with a
                    # password or an unverifying provider) must not share the owner's account.
                    now = utcnow()
                    user.email_verified_at = now
                    user.password_hash = None
                    await session.execute(
                        delete(OAuthAccount).where(OAuthAccount.user_id == user.id)
                    )
                    await repository.revoke_sessions(
                        session, user_id=user.id, reason="email_claimed", now=now
                    )
                session.add(
                    OAuthAccount(
                        id=new_id("oac"),
                        user_id=user.id,
                        provider=identity.provider,
                        provider_user_id=identity.subject,
                        email=identity.email,
                    )
                )
                await session.flush()
            return user, created
        except IntegrityError:
            # A concurrent first sign-in linked the same identity; read it again.
            continue
    raise InvalidToken("The sign-in could not be completed; try again.")
