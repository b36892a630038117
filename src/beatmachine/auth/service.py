"""Sign-up, sign-in, sessions and their tokens, password reset, e-mail verification,
OAuth sign-in and account deletion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth import repository
from beatmachine.auth.exceptions import (
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidToken,
    RefreshTokenReused,
    SessionNotFound,
    TokenRevoked,
    UserExists,
)
from beatmachine.auth.models import AuthSession, OAuthAccount, OneTimeToken, RefreshToken
from beatmachine.auth.oauth import ProviderIdentity

__all__ = ["Authenticated", "Client", "IssuedTokens", "ProviderIdentity"]
from beatmachine.core.db import release_connection, transaction
from beatmachine.core.errors import AuthRequired, RateLimitExceeded, ValidationFailed
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

RESET_PURPOSE = "password_reset"
LOGIN_CHECK_ATTEMPTS = 2
VERIFY_PURPOSE = "email_verification"
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


# --- sessions and tokens -------------------------------------------------------------


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
    if now.date() != auth_session.last_used_at.date():
        users_service.mark_active(session, user.id, now)
    if now - auth_session.last_used_at > LAST_USED_RESOLUTION:
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
    await repository.revoke_sessions(
        session, user_id=auth.user.id, session_id=auth.session.id, reason="logout", now=utcnow()
    )


async def list_sessions(session: AsyncSession, user: User) -> list[AuthSession]:
    return list(await repository.active_sessions(session, user.id, utcnow()))


async def revoke_session(session: AsyncSession, user: User, session_id: str) -> None:
    """Revoke one of the caller's own sessions; someone else's is `SessionNotFound`."""
    target = await session.get(AuthSession, session_id)
    if target is None or target.user_id != user.id or target.revoked_at is not None:
        raise SessionNotFound()
    await repository.revoke_sessions(
        session, user_id=user.id, session_id=session_id, reason="revoked", now=utcnow()
    )


# --- registration and login ----------------------------------------------------------


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


def _login_limits(state: AppState) -> tuple[int, int, int]:
    settings = state.settings
    return (
        settings.login_fail_limit_account,
        settings.login_fail_limit_ip,
        settings.login_fail_window,
    )


async def _check_login_throttle(state: AppState, email: str, ip: str) -> None:
    account_limit, ip_limit, window = _login_limits(state)
    for name, key, limit in (
        ("login-fail-account", email, account_limit),
        ("login-fail-ip", ip, ip_limit),
    ):
        decision = await state.limiter.peek(name, key, limit=limit, window=window)
        if not decision.allowed:
            raise RateLimitExceeded(
                "Too many failed sign-in attempts; try again later.",
                headers={"Retry-After": str(decision.retry_after)},
            )


async def _record_login_failure(state: AppState, email: str, ip: str) -> None:
    account_limit, ip_limit, window = _login_limits(state)
    await state.limiter.hit("login-fail-account", email, limit=account_limit, window=window)
    await state.limiter.hit("login-fail-ip", ip, limit=ip_limit, window=window)


async def login(
    session: AsyncSession, state: AppState, *, email: str, password: str, client: Client
) -> tuple[User, IssuedTokens]:
    """Check the password (Argon2id or bcrypt), throttle failures, open a session.

    Signing in during the deletion grace period cancels the deletion.
    """
    email = users_service.normalise_email(email)
    await _check_login_throttle(state, email, client.ip)
    user = await users_service.find_by_email(session, email)
    checked_hash = user.password_hash if user else None
    # Checking a password can wait for a hashing slot: no connection is held meanwhile,
    # so the account is read again after, and checked again if its hash changed then
    # (a password reset, or another sign-in that upgraded the same hash).
    for _attempt in range(LOGIN_CHECK_ATTEMPTS):
        await release_connection(session)
        check = await state.passwords.verify(checked_hash, password)
        if user is None or not check.valid:
            await _record_login_failure(state, email, client.ip)
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
    account_limit, _, window = _login_limits(state)
    await state.limiter.clear("login-fail-account", email, limit=account_limit, window=window)
    if new_hash is not None:
        user.password_hash = new_hash
    if user.deletion_scheduled_at is not None:
        await users_service.cancel_deletion(session, user)
        log.info("account_deletion_cancelled", user_id=user.id)
    user.last_login_at = utcnow()
    users_service.mark_active(session, user.id, user.last_login_at)
    tokens = await start_session(session, state, user, client)
    return user, tokens


# --- one-time tokens: password reset and e-mail verification ---------------------------


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
    account_limit, _, window = _login_limits(state)
    await state.limiter.clear("login-fail-account", user.email, limit=account_limit, window=window)


async def send_verification_email(session: AsyncSession, state: AppState, user: User) -> None:
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


# --- OAuth -----------------------------------------------------------------------------


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
        linked = (
            (
                await session.execute(
                    select(User)
                    .join(OAuthAccount, OAuthAccount.user_id == User.id)
                    .where(
                        OAuthAccount.provider == identity.provider,
                        OAuthAccount.provider_user_id == identity.subject,
                    )
                )
            )
            .unique()
            .scalar_one_or_none()
        )
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


# --- account deletion -------------------------------------------------------------------


async def request_deletion(
    session: AsyncSession, state: AppState, user: User, password: str | None
) -> None:
    """Schedule the account's removal after the grace period and end every session."""
    if user.password_hash is not None:
        # Only the authentication's own bookkeeping (last use of the session) is pending.
        await release_connection(session)
        check = await state.passwords.verify(user.password_hash, password or "")
        if not check.valid:
            raise InvalidCredentials("The password is wrong.")
    now = utcnow()
    when = now + timedelta(seconds=state.settings.account_deletion_grace)
    await users_service.schedule_deletion(session, user, when)
    await repository.revoke_sessions(session, user_id=user.id, reason="account_deletion", now=now)


async def purge_deleted_accounts(state: AppState) -> int:
    """The periodic job: remove accounts whose grace period is over."""
    async with transaction(state.sessionmaker) as session:
        ids = await users_service.purge_deleted(session, utcnow())
    for user_id in ids:
        log.info("account_purged", user_id=user_id)
    return len(ids)
