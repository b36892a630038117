"""Notifications: what happened to a person's patterns and comments, and who followed
them; shown in the app, and e-mailed in batches for the kinds they switched on.

Listeners make them from the domain events, never the request that did the thing. A
notification whose recipient wants e-mails of its kind schedules one e-mail for its
recipient `NOTIFICATION_EMAIL_DELAY` later, unless one is already scheduled: everything
that gathers until then (fifty likes of a burst, say) goes out in that one e-mail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.db import transaction
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.jobs.labels import DELAY
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.core.state import AppState
from beatmachine.patterns.models import Pattern
from beatmachine.social import repository
from beatmachine.social.exceptions import NotificationNotFound
from beatmachine.social.models import Comment, Notification
from beatmachine.users.models import User, UserPreferences

EMAIL_JOB = "social.notification_email"
# Kinds of one e-mail that name the same pattern are told as one line; at most this
# many names are spelled out in it.
NAMES_PER_LINE = 2


class NotificationType(StrEnum):
    PATTERN_LIKED = "pattern_liked"
    PATTERN_COMMENTED = "pattern_commented"
    COMMENT_REPLIED = "comment_replied"
    USER_FOLLOWED = "user_followed"


# The preference that switches the e-mails of each kind.
_EMAIL_SWITCH = {
    NotificationType.PATTERN_LIKED: "notify_likes",
    NotificationType.PATTERN_COMMENTED: "notify_comments",
    NotificationType.COMMENT_REPLIED: "notify_comments",
    NotificationType.USER_FOLLOWED: "notify_follows",
}
# Kinds told once while unread: a like taken back and given again, a follow repeated.
_ONCE_WHILE_UNREAD = {NotificationType.PATTERN_LIKED, NotificationType.USER_FOLLOWED}


@dataclass(frozen=True)
class NotificationPage:
    rows: list[repository.NotificationRow]
    unread: int
    pagination: Pagination


def _emailed_kinds(preferences: UserPreferences | None) -> set[str]:
    if preferences is None:
        return set()
    return {kind.value for kind, switch in _EMAIL_SWITCH.items() if getattr(preferences, switch)}


async def notify(
    session: AsyncSession,
    state: AppState,
    kind: NotificationType,
    *,
    user_id: str,
    actor_id: str,
    occurred_at: datetime,
    pattern_id: str | None = None,
    comment_id: str | None = None,
) -> Notification | None:
    """Tell `user_id` that `actor_id` did something (never of their own doing, nor to an
    account awaiting deletion, nor about what is already gone); schedules the e-mail
    when they want e-mails of this kind. Returns the notification, or None."""
    if user_id == actor_id:
        return None
    recipient = await session.get(User, user_id)
    if recipient is None or recipient.deletion_scheduled_at is not None:
        return None
    if await session.get(User, actor_id) is None:
        return None
    if pattern_id is not None and await session.get(Pattern, pattern_id) is None:
        return None
    if comment_id is not None and await session.get(Comment, comment_id) is None:
        return None
    if kind in _ONCE_WHILE_UNREAD and await repository.has_unread_same(
        session, user_id, kind.value, actor_id, pattern_id
    ):
        return None
    emailed = (
        kind.value in _emailed_kinds(recipient.preferences)
        and recipient.email_verified_at is not None
    )
    notification = Notification(
        id=new_id("ntf"),
        user_id=user_id,
        type=kind.value,
        actor_id=actor_id,
        pattern_id=pattern_id,
        comment_id=comment_id,
        created_at=occurred_at,
        email_pending=emailed,
    )
    session.add(notification)
    await session.flush()
    if emailed:
        delay = state.settings.notification_email_delay
        due = utcnow() + timedelta(seconds=delay)
        if await repository.schedule_digest(session, user_id, due):
            state.jobs.enqueue(session, EMAIL_JOB, job_labels={DELAY: delay}, user_id=user_id)
    return notification


async def notifications(
    session: AsyncSession, viewer: User, params: PageParams, *, unread_only: bool
) -> NotificationPage:
    """A page of the viewer's notifications, newest first, with their unread count."""
    rows, pagination = await repository.notifications_page(
        session, viewer.id, params, unread_only=unread_only
    )
    unread = await repository.unread_count(session, viewer.id)
    return NotificationPage(rows, unread, pagination)


async def unread_count(session: AsyncSession, viewer: User) -> int:
    """How many of the viewer's notifications are unread."""
    return await repository.unread_count(session, viewer.id)


async def mark_read(
    session: AsyncSession, viewer: User, notification_id: str
) -> repository.NotificationRow:
    """Mark one of the viewer's notifications read (idempotent); someone else's is
    `NotificationNotFound`, like one that does not exist."""
    row = await repository.mark_read(session, viewer.id, notification_id, utcnow())
    if row is None:
        raise NotificationNotFound()
    return row


async def mark_all_read(session: AsyncSession, viewer: User) -> int:
    """Mark all of the viewer's notifications read; returns how many were unread."""
    return await repository.mark_all_read(session, viewer.id, utcnow())


def _names(rows: list[repository.NotificationRow]) -> str:
    names: list[str] = []
    for row in rows:
        if row.actor.display_name not in names:
            names.append(row.actor.display_name)
    shown = ", ".join(names[:NAMES_PER_LINE])
    others = len(names) - NAMES_PER_LINE
    if others > 0:
        return f"{shown} and {others} other{'s' if others > 1 else ''}"
    return shown


def _line(kind: str, rows: list[repository.NotificationRow]) -> str:
    title = rows[0].pattern_title
    pattern = f"“{title}”" if title is not None else "a pattern"
    who = _names(rows)
    if kind == NotificationType.PATTERN_LIKED:
        return f"{who} liked {pattern}."
    if kind == NotificationType.PATTERN_COMMENTED:
        return f"{who} commented on {pattern}."
    if kind == NotificationType.COMMENT_REPLIED:
        return f"{who} replied to your comment on {pattern}."
    return f"{who} started following you."


def _digest_lines(rows: Iterable[repository.NotificationRow]) -> list[str]:
    grouped: dict[tuple[str, str | None], list[repository.NotificationRow]] = {}
    for row in rows:
        key = (row.notification.type, row.notification.pattern_id)
        grouped.setdefault(key, []).append(row)
    return [_line(kind, group) for (kind, _pattern), group in grouped.items()]


async def send_email(state: AppState, user_id: str) -> int:
    """Job: e-mail `user_id` everything that gathered since the last e-mail, in one
    message (only unread notifications of kinds still switched on); returns how many
    notifications it told."""
    settings = state.settings
    async with transaction(state.sessionmaker) as session:
        await repository.take_digest(session, user_id)
        recipient = await session.get(User, user_id)
        if recipient is None:
            return 0
        rows = await repository.take_pending_email(
            session, user_id, _emailed_kinds(recipient.preferences)
        )
        if not rows or recipient.deletion_scheduled_at is not None:
            return 0
        lines = "\n".join(f"- {line}" for line in _digest_lines(rows))
        app = settings.app_url.rstrip("/")
        count = len(rows)
        message = state.mailer.compose(
            recipient.email,
            f"Beat Machine: {count} new notification{'s' if count > 1 else ''}",
            f"Hello {recipient.display_name},\n\n"
            f"Here is what happened on the Beat Machine:\n\n{lines}\n\n"
            f"See them all: {app}/notifications\n\n"
            "You get these e-mails because of your notification preferences; "
            f"change them at {app}/settings.\n",
        )
        state.mailer.queue(session, message)
        return count
