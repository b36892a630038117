"""Accounts, profiles and preferences."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core import events
from beatmachine.core.config import Settings
from beatmachine.core.db import release_connection
from beatmachine.core.errors import ValidationFailed
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.state import AppState, ProfileCounts, PurgeHook
from beatmachine.machines import service as machines_service
from beatmachine.users import avatars
from beatmachine.users.events import UserActive, UserRegistered
from beatmachine.users.exceptions import UserNotFound
from beatmachine.users.models import User, UserPreferences
from beatmachine.users.schemas import (
    OwnStats,
    PreferencesUpdate,
    ProfileUpdate,
    PublicStats,
)


def normalise_email(email: str) -> str:
    """An address as stored: trimmed and lower-cased."""
    return email.strip().lower()


async def get_user(session: AsyncSession, user_id: str) -> User:
    """The active account with this id, or `UserNotFound` (also for accounts being deleted)."""
    user = await session.get(User, user_id)
    if user is None or user.deletion_scheduled_at is not None:
        raise UserNotFound()
    return user


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    """The account with this address (any state), or None."""
    result = await session.execute(select(User).where(User.email == normalise_email(email)))
    return result.unique().scalar_one_or_none()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    display_name: str,
    password_hash: str | None,
    method: str,
    email_verified: bool = False,
) -> User:
    """Create an account with default preferences (`method`: `password` or the OAuth
    provider). The caller checks the email is free."""
    email = normalise_email(email)
    now = utcnow()
    user = User(
        id=new_id("usr"),
        email=email,
        display_name=display_name,
        password_hash=password_hash,
        is_admin=False,
        email_verified_at=now if email_verified else None,
        created_at=now,
        updated_at=now,
    )
    user.preferences = UserPreferences(user_id=user.id)
    session.add(user)
    await session.flush()
    events.record(session, UserRegistered(user_id=user.id, method=method))
    return user


def mark_active(session: AsyncSession, user_id: str, when: datetime) -> None:
    """Record that the account was used on `when`'s day (UTC)."""
    events.record(session, UserActive(user_id=user_id, day=when.date()))


def is_admin(user: User, settings: Settings) -> bool:
    """Admins are flagged in the database (`create-admin`) or listed in `ADMIN_EMAILS`
    with their email confirmed (else whoever registers a listed address first would be
    admin). The list is read on every check, so removing an address takes the rights away."""
    return user.is_admin or (
        user.email in settings.admin_emails and user.email_verified_at is not None
    )


async def admin_emails(session: AsyncSession, settings: Settings) -> list[str]:
    """The addresses of every active administrator (see `is_admin`), for notices to them."""
    rows = await session.execute(
        select(User.email)
        .where(
            User.deletion_scheduled_at.is_(None),
            or_(
                User.is_admin.is_(True),
                and_(User.email.in_(settings.admin_emails), User.email_verified_at.is_not(None)),
            ),
        )
        .order_by(User.email)
    )
    return list(rows.scalars())


async def make_admin(session: AsyncSession, email: str) -> User:
    """Flag the account of `email` as an administrator (`create-admin`)."""
    user = await find_by_email(session, email)
    if user is None:
        raise UserNotFound(f"No account with the email {normalise_email(email)}.")
    user.is_admin = True
    await session.flush()
    return user


async def update_profile(
    session: AsyncSession, state: AppState, user: User, changes: ProfileUpdate
) -> User:
    """Apply the fields the client sent; absent fields keep their value. An avatar is
    taken as `avatars` says: a data URL at once, a URL by a job, null removes it. A data
    URL's image is checked and stored first, with no connection held; a refusal leaves
    every field as it was."""
    fields = changes.model_fields_set
    stored = None
    if "avatar" in fields and changes.avatar is not None and changes.avatar.startswith("data:"):
        await release_connection(session)
        stored = await avatars.store_data_url(state, user, changes.avatar)
    for field in fields - {"avatar"}:
        setattr(user, field, getattr(changes, field))
    user.updated_at = utcnow()
    if "avatar" in fields:
        if changes.avatar is None or stored is not None:
            await avatars.point(session, state, user, stored)
        else:
            await avatars.request_fetch(session, state, user, changes.avatar)
    await session.flush()
    return user


async def update_preferences(
    session: AsyncSession, user: User, changes: PreferencesUpdate
) -> UserPreferences:
    """Apply the preferences the client sent; the flavor must be one of a machine we serve."""
    if "default_flavor" in changes.model_fields_set:
        flavors = await machines_service.known_flavors(session)
        if changes.default_flavor not in flavors:
            message = f"must be one of {', '.join(flavors)}" if flavors else "no machines exist"
            raise ValidationFailed(
                details={"fields": [{"field": "defaultFlavor", "message": message, "type": "enum"}]}
            )
    preferences = user.preferences
    for field in changes.model_fields_set:
        setattr(preferences, field, getattr(changes, field))
    user.updated_at = utcnow()
    await session.flush()
    return preferences


async def own_stats(
    session: AsyncSession, user: User, providers: Sequence[ProfileCounts]
) -> OwnStats:
    """Counts for the owner's profile, computed by the domains that own them (each
    registers its provider in its `setup`); a count whose domain is not installed is 0."""
    counts = {"patterns_created": 0, "patterns_shared": 0, "followers": 0, "following": 0}
    for provider in providers:
        counts.update(await provider(session, user.id))
    return OwnStats(**counts)


async def public_stats(
    session: AsyncSession, user: User, providers: Sequence[ProfileCounts]
) -> PublicStats:
    """The counts anyone may see on a profile."""
    own = await own_stats(session, user, providers)
    return PublicStats(patterns_shared=own.patterns_shared, followers=own.followers)


async def schedule_deletion(session: AsyncSession, user: User, when: datetime) -> None:
    """Mark the account for removal at `when` (the end of the grace period)."""
    user.deletion_scheduled_at = when
    await session.flush()


async def cancel_deletion(session: AsyncSession, user: User) -> None:
    """The owner changed their mind: the account stays."""
    user.deletion_scheduled_at = None
    await session.flush()


async def purge_deleted(
    session: AsyncSession, now: datetime, before: Sequence[PurgeHook] = ()
) -> Sequence[str]:
    """Remove accounts whose deletion grace period is over; their data goes with them.
    `before` runs first in the same transaction (the domains' `before_account_purge`)."""
    ids = (
        (
            await session.execute(
                select(User.id).where(
                    User.deletion_scheduled_at.is_not(None), User.deletion_scheduled_at <= now
                )
            )
        )
        .scalars()
        .all()
    )
    if ids:
        for hook in before:
            await hook(session, list(ids))
        await session.execute(delete(User).where(User.id.in_(ids)))
    return ids


async def display_names(session: AsyncSession, user_ids: set[str]) -> dict[str, str]:
    """Display names of several users in one query."""
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids)))
    return {user_id: name for user_id, name in rows.all()}
