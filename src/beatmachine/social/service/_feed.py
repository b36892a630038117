"""The activity feed: what the people one follows did, written into each follower's feed
when it happens (fan-out on write, in jobs) and filtered when it is read.

Recording runs in the event listeners, never in the request that did the thing: the
request only records its domain event. One listener job writes the activity into the
feeds of the first `FEED_FANOUT_BATCH` followers; an account with more followers gets one
more job per batch, queued in the same transaction, which workers run side by side.
What may be shown (the pattern still public, the like or follow still there, the actor
still followed) is checked when the feed is read, so a change of those shows at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.db import in_batches, transaction
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.core.state import AppState
from beatmachine.patterns.models import Pattern
from beatmachine.social import repository
from beatmachine.social.models import Activity, Comment
from beatmachine.users.models import User

FAN_OUT_JOB = "social.fan_out"
PRUNE_BATCH = 5000


class ActivityType(StrEnum):
    PATTERN_CREATED = "pattern_created"
    PATTERN_LIKED = "pattern_liked"
    USER_FOLLOWED = "user_followed"
    COMMENT_CREATED = "comment_created"


@dataclass(frozen=True)
class ActivityRefs:
    """Who did it, and what it names."""

    actor_id: str
    pattern_id: str | None = None
    comment_id: str | None = None
    subject_id: str | None = None


@dataclass(frozen=True)
class FeedPage:
    rows: list[repository.FeedRow]
    pagination: Pagination


def _cursor_out(cursor: repository.FollowerCursor | None) -> list[str] | None:
    return None if cursor is None else [cursor[0].isoformat(), cursor[1]]


def _cursor_in(value: list[str] | None) -> repository.FollowerCursor | None:
    return None if value is None else (datetime.fromisoformat(value[0]), value[1])


async def _still_there(session: AsyncSession, refs: ActivityRefs) -> bool:
    # The event may reach the feed after what it names is gone (a comment deleted, an
    # account purged): then there is nothing to show, and a row would break its key.
    named: list[tuple[Any, str | None]] = [
        (User, refs.actor_id),
        (User, refs.subject_id),
        (Pattern, refs.pattern_id),
        (Comment, refs.comment_id),
    ]
    for model, key in named:
        if key is not None and await session.get(model, key) is None:
            return False
    return True


async def record_activity(
    session: AsyncSession,
    state: AppState,
    kind: ActivityType,
    refs: ActivityRefs,
    occurred_at: datetime,
) -> Activity | None:
    """Record an activity and write it into the feeds of its actor's followers: the
    first batch now, the others by jobs queued in the same transaction. Returns None
    (and records nothing) when what it names no longer exists."""
    if not await _still_there(session, refs):
        return None
    activity = Activity(
        id=new_id("act"),
        type=kind.value,
        created_at=occurred_at,
        actor_id=refs.actor_id,
        pattern_id=refs.pattern_id,
        comment_id=refs.comment_id,
        subject_id=refs.subject_id,
    )
    session.add(activity)
    await session.flush()
    bounds = await repository.fan_out_boundaries(
        session, refs.actor_id, state.settings.feed_fanout_batch
    )
    ranges = list(zip([None, *bounds], [*bounds, None], strict=True))
    (after, upto), rest = ranges[0], ranges[1:]
    await repository.fan_out(session, activity, after, upto)
    for after, upto in rest:
        state.jobs.enqueue(
            session,
            FAN_OUT_JOB,
            activity_id=activity.id,
            after=_cursor_out(after),
            upto=_cursor_out(upto),
        )
    return activity


async def fan_out_batch(
    state: AppState, activity_id: str, after: list[str] | None, upto: list[str] | None
) -> int:
    """Job: write an activity into the feeds of one batch of its actor's followers
    (those after `after` up to `upto`); returns how many feeds it was added to."""
    async with transaction(state.sessionmaker) as session:
        activity = await session.get(Activity, activity_id)
        if activity is None:  # pruned or cascaded away meanwhile
            return 0
        return await repository.fan_out(session, activity, _cursor_in(after), _cursor_in(upto))


async def bring_into_feed(
    session: AsyncSession, state: AppState, follower_id: str, followee_id: str
) -> int:
    """Write the recent activities of someone just followed into the follower's feed
    (the newest `FEED_BACKFILL` of the retention period)."""
    if state.settings.feed_backfill == 0:
        return 0
    since = utcnow() - timedelta(seconds=state.settings.activity_retention)
    return await repository.backfill(
        session, follower_id, followee_id, since, state.settings.feed_backfill
    )


async def feed(
    session: AsyncSession, state: AppState, viewer: User, params: PageParams
) -> FeedPage:
    """A page of what the people `viewer` follows did, newest first: the newest
    `FEED_MAX_ITEMS` activities that may be shown now."""
    rows, pagination = await repository.feed_page(
        session, viewer.id, params, state.settings.feed_max_items
    )
    return FeedPage(rows, pagination)


async def prune_activities(state: AppState) -> int:
    """Periodic job: remove activities (and their feed entries) older than
    `ACTIVITY_RETENTION`, in batches of one transaction each; returns how many went."""
    before = utcnow() - timedelta(seconds=state.settings.activity_retention)
    return await in_batches(
        state.sessionmaker,
        partial(repository.prune_activities, before=before, batch=PRUNE_BATCH),
        PRUNE_BATCH,
    )
