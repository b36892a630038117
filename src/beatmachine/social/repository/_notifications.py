"""Queries of notifications and of the e-mails that tell them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, Select, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.db import insert_ignoring_conflict
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.patterns.models import Pattern
from beatmachine.social.models import Notification, NotificationDigest
from beatmachine.users.models import User


@dataclass(frozen=True)
class NotificationRow:
    notification: Notification
    actor: User
    # The pattern's title when the recipient may see the pattern, else None.
    pattern_title: str | None


def _with_actor_and_pattern(user_id: str) -> Select[Notification, User, str, bool]:
    # A pattern deleted, or someone else's made private since, is not named.
    visible = and_(
        Pattern.deleted_at.is_(None), or_(Pattern.is_public.is_(True), Pattern.user_id == user_id)
    )
    return (
        select(Notification, User, Pattern.title, visible)
        .join(User, User.id == Notification.actor_id)
        .outerjoin(Pattern, Pattern.id == Notification.pattern_id)
    )


def _row(found: Row[Notification, User, str, bool]) -> NotificationRow:
    notification, actor, title, visible = found
    return NotificationRow(notification, actor, title if visible else None)


async def has_unread_same(
    session: AsyncSession, user_id: str, kind: str, actor_id: str, pattern_id: str | None
) -> bool:
    """Whether `user_id` has an unread notification of `kind` from `actor_id` on the same
    pattern (a like taken back and given again tells once)."""
    found = await session.execute(
        select(Notification.id)
        .where(
            Notification.user_id == user_id,
            Notification.read_at.is_(None),
            Notification.type == kind,
            Notification.actor_id == actor_id,
            Notification.pattern_id.is_(None)
            if pattern_id is None
            else Notification.pattern_id == pattern_id,
        )
        .limit(1)
    )
    return found.first() is not None


async def notifications_page(
    session: AsyncSession, user_id: str, params: PageParams, *, unread_only: bool
) -> tuple[list[NotificationRow], Pagination]:
    """One page of `user_id`'s notifications, newest first, with their actors and the
    titles of patterns they may see: one query for the page, one for the total."""
    where = [Notification.user_id == user_id]
    if unread_only:
        where.append(Notification.read_at.is_(None))
    page = (
        _with_actor_and_pattern(user_id)
        .where(*where)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(params.limit)
        .offset(params.offset)
    )
    rows = [_row(found) for found in (await session.execute(page)).all()]
    total = (
        await session.execute(select(func.count()).select_from(Notification).where(*where))
    ).scalar_one()
    return rows, params.pagination(int(total))


async def unread_count(session: AsyncSession, user_id: str) -> int:
    """How many of `user_id`'s notifications are unread (from the partial index)."""
    counted = await session.execute(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return int(counted.scalar_one())


async def mark_read(
    session: AsyncSession, user_id: str, notification_id: str, when: datetime
) -> NotificationRow | None:
    """Mark one of `user_id`'s notifications read (kept as first read); None when it is
    not theirs or not there."""
    await session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.user_id == user_id,
            Notification.read_at.is_(None),
        )
        .values(read_at=when)
        .execution_options(synchronize_session=False)
    )
    found = await session.execute(
        _with_actor_and_pattern(user_id)
        .where(Notification.id == notification_id, Notification.user_id == user_id)
        .execution_options(populate_existing=True)
    )
    row = found.first()
    return None if row is None else _row(row)


async def mark_all_read(session: AsyncSession, user_id: str, when: datetime) -> int:
    """Mark every unread notification of `user_id` read; returns how many."""
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=when)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def schedule_digest(session: AsyncSession, user_id: str, due_at: datetime) -> bool:
    """Note that an e-mail is due for `user_id`; False when one is already scheduled."""
    return await insert_ignoring_conflict(
        session,
        NotificationDigest.__table__,
        {"user_id": user_id, "due_at": due_at},
        ["user_id"],
    )


async def take_digest(session: AsyncSession, user_id: str) -> None:
    """Clear the scheduled e-mail of `user_id`: notifications from now on schedule the
    next one."""
    await session.execute(delete(NotificationDigest).where(NotificationDigest.user_id == user_id))


async def take_pending_email(
    session: AsyncSession, user_id: str, kinds: set[str]
) -> list[NotificationRow]:
    """The unread notifications of `user_id` still to be e-mailed whose kinds are in
    `kinds`, oldest first; every pending one is marked done (locked, so two runs cannot
    both send them)."""
    pending = list(
        (
            await session.execute(
                select(Notification.id)
                .where(Notification.user_id == user_id, Notification.email_pending.is_(True))
                .order_by(Notification.id)
                .with_for_update()
            )
        ).scalars()
    )
    if not pending:
        return []
    found = await session.execute(
        _with_actor_and_pattern(user_id)
        .where(
            Notification.id.in_(pending),
            Notification.read_at.is_(None),
            Notification.type.in_(kinds),
        )
        .order_by(Notification.created_at, Notification.id)
    )
    rows = [_row(row) for row in found.all()]
    await session.execute(
        update(Notification)
        .where(Notification.id.in_(pending))
        .values(email_pending=False)
        .execution_options(synchronize_session=False)
    )
    return rows
