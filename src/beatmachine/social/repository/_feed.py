"""Queries of activities and the feeds they are written into."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, literal, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.patterns.models import Pattern, PatternLike
from beatmachine.social.models import Activity, FeedEntry, Follow
from beatmachine.users.models import User

# Where a fan-out stands in the followers of the actor, in the order of the index
# `ix_follows_followee_created`: (follow created at, follower id).
FollowerCursor = tuple[datetime, str]


@dataclass(frozen=True)
class FeedRow:
    activity: Activity
    actor_name: str
    pattern_title: str | None
    subject_name: str | None


def _insert(session: AsyncSession) -> Any:
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _followers_between(
    actor_id: str, after: FollowerCursor | None, upto: FollowerCursor | None
) -> list[Any]:
    where = [Follow.followee_id == actor_id]
    position = tuple_(Follow.created_at, Follow.follower_id)
    if after is not None:
        where.append(position > tuple_(literal(after[0], Follow.created_at.type), after[1]))
    if upto is not None:
        where.append(position <= tuple_(literal(upto[0], Follow.created_at.type), upto[1]))
    return where


async def fan_out_boundaries(
    session: AsyncSession, actor_id: str, batch: int
) -> list[FollowerCursor]:
    """Every `batch`-th follower of `actor_id` in index order: the bounds that cut the
    fan-out of one activity into jobs of `batch` followers each."""
    numbered = (
        select(
            Follow.created_at,
            Follow.follower_id,
            func.row_number().over(order_by=(Follow.created_at, Follow.follower_id)).label("n"),
        )
        .where(Follow.followee_id == actor_id)
        .subquery()
    )
    rows = await session.execute(
        select(numbered.c.created_at, numbered.c.follower_id)
        .where(numbered.c.n % batch == 0)
        .order_by(numbered.c.n)
    )
    return [(created_at, follower_id) for created_at, follower_id in rows.all()]


async def fan_out(
    session: AsyncSession,
    activity: Activity,
    after: FollowerCursor | None = None,
    upto: FollowerCursor | None = None,
) -> int:
    """Write `activity` into the feeds of the actor's followers between the two cursors
    (one INSERT … SELECT; an entry already there is left alone); returns how many."""
    followers = select(
        Follow.follower_id,
        literal(activity.created_at, FeedEntry.created_at.type),
        literal(activity.id),
        literal(activity.actor_id),
    ).where(*_followers_between(activity.actor_id, after, upto))
    statement = (
        _insert(session)(FeedEntry)
        .from_select(["user_id", "created_at", "activity_id", "actor_id"], followers)
        .on_conflict_do_nothing()
    )
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


async def backfill(
    session: AsyncSession, follower_id: str, actor_id: str, since: datetime, limit: int
) -> int:
    """Write the newest `limit` activities of `actor_id` since `since` into the feed of
    `follower_id` (someone who just followed them)."""
    recent = (
        select(
            literal(follower_id),
            Activity.created_at,
            Activity.id,
            Activity.actor_id,
        )
        .where(Activity.actor_id == actor_id, Activity.created_at >= since)
        .order_by(Activity.created_at.desc(), Activity.id.desc())
        .limit(limit)
    )
    statement = (
        _insert(session)(FeedEntry)
        .from_select(["user_id", "created_at", "activity_id", "actor_id"], recent)
        .on_conflict_do_nothing()
    )
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def _visible_feed(user_id: str) -> tuple[Select[Any], Any, Any]:
    """The entries of `user_id`'s feed that may be shown now: of someone still followed
    and not leaving, on a pattern still there and public (or the reader's own), a like or
    follow not taken back. Returned with the aliases of the actor and the followed."""
    actor = aliased(User)
    subject = aliased(User)
    followed_back = aliased(Follow)
    liked = exists().where(
        PatternLike.pattern_id == Activity.pattern_id, PatternLike.user_id == Activity.actor_id
    )
    still_follows = exists().where(
        followed_back.follower_id == Activity.actor_id,
        followed_back.followee_id == Activity.subject_id,
    )
    # A check per entry rather than a join: it stays a filter on the newest-first scan
    # of the reader's entries, which stops after one page.
    still_followed = (
        select(literal(True))
        .where(Follow.follower_id == FeedEntry.user_id, Follow.followee_id == FeedEntry.actor_id)
        .scalar_subquery()
    )
    return (
        (
            select(FeedEntry.created_at)
            .select_from(FeedEntry)
            .join(Activity, Activity.id == FeedEntry.activity_id)
            .join(actor, actor.id == FeedEntry.actor_id)
            .outerjoin(Pattern, Pattern.id == Activity.pattern_id)
            .outerjoin(subject, subject.id == Activity.subject_id)
            .where(
                FeedEntry.user_id == user_id,
                still_followed.is_(True),
                actor.deletion_scheduled_at.is_(None),
                or_(
                    Activity.pattern_id.is_(None),
                    and_(
                        Pattern.deleted_at.is_(None),
                        or_(Pattern.is_public.is_(True), Pattern.user_id == user_id),
                    ),
                ),
                or_(Activity.subject_id.is_(None), subject.deletion_scheduled_at.is_(None)),
                or_(Activity.type != "pattern_liked", liked),
                or_(Activity.type != "user_followed", still_follows),
            )
        ),
        actor,
        subject,
    )


async def feed_page(
    session: AsyncSession, user_id: str, params: PageParams, max_items: int
) -> tuple[list[FeedRow], Pagination]:
    """One page of the newest `max_items` visible entries of `user_id`'s feed, newest
    first: one query for the page, one for the total (which stops at `max_items`)."""
    visible, actor, subject = _visible_feed(user_id)
    rows: list[FeedRow] = []
    room = max_items - params.offset
    if room > 0:
        page = (
            visible.with_only_columns(
                Activity, actor.display_name, Pattern.title, subject.display_name
            )
            .order_by(FeedEntry.created_at.desc(), FeedEntry.activity_id.desc())
            .limit(min(params.limit, room))
            .offset(params.offset)
        )
        rows = [
            FeedRow(activity, actor_name, title, subject_name)
            for activity, actor_name, title, subject_name in (await session.execute(page)).all()
        ]
    # Counted newest first, like the page: the newest entries are the ones in memory.
    counted = (
        visible.with_only_columns(FeedEntry.activity_id)
        .order_by(FeedEntry.created_at.desc(), FeedEntry.activity_id.desc())
        .limit(max_items)
        .subquery()
    )
    total = (await session.execute(select(func.count()).select_from(counted))).scalar_one()
    return rows, params.pagination(int(total))


async def prune_activities(session: AsyncSession, before: datetime, batch: int) -> int:
    """Delete up to `batch` activities older than `before` with their feed entries;
    returns how many activities went."""
    old = list(
        (
            await session.execute(
                select(Activity.id)
                .where(Activity.created_at < before)
                .order_by(Activity.created_at)
                .limit(batch)
            )
        ).scalars()
    )
    if not old:
        return 0
    # The entries first: on SQLite a cascade would take them one activity at a time.
    await session.execute(delete(FeedEntry).where(FeedEntry.activity_id.in_(old)))
    await session.execute(delete(Activity).where(Activity.id.in_(old)))
    return len(old)
