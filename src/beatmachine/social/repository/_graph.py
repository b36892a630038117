"""Queries of comments and follows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.db import insert_ignoring_conflict
from beatmachine.core.ids import utcnow
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.social.models import Comment, Follow
from beatmachine.users.models import User


async def comments_page(
    session: AsyncSession, pattern_id: str, params: PageParams, *, newest_first: bool
) -> tuple[list[tuple[Comment, User]], Pagination]:
    """One page of a pattern's comments with their authors (one query for the page, one
    for the total)."""
    order = (
        (Comment.created_at.desc(), Comment.id.desc())
        if newest_first
        else (Comment.created_at, Comment.id)
    )
    page = (
        select(Comment, User)
        .join(User, User.id == Comment.user_id)
        .where(Comment.pattern_id == pattern_id)
        .order_by(*order)
        .limit(params.limit)
        .offset(params.offset)
    )
    rows = [(comment, author) for comment, author in (await session.execute(page)).all()]
    total = (
        await session.execute(
            select(func.count()).select_from(Comment).where(Comment.pattern_id == pattern_id)
        )
    ).scalar_one()
    return rows, params.pagination(int(total))


async def delete_thread(session: AsyncSession, comment: Comment) -> list[str]:
    """Delete `comment` and, when it opens a thread, its replies; returns the ids that
    these statements deleted (a reply deleted meanwhile by someone else is not counted).
    Replies first: a cascade from the first comment would take them unseen on SQLite."""
    deleted: list[str] = []
    for which in (Comment.parent_id == comment.id, Comment.id == comment.id):
        result = await session.execute(
            delete(Comment)
            .where(which)
            .returning(Comment.id)
            .execution_options(synchronize_session=False)
        )
        deleted += result.scalars()
    return deleted


async def comments_left_by(session: AsyncSession, user_ids: list[str]) -> dict[str, int]:
    """For each pattern, how many of its comments go with the accounts `user_ids`: their
    own, and the replies in the threads they opened. The rows are locked, so a comment
    deleted or replied to meanwhile cannot be counted twice or missed."""
    opened = select(Comment.id).where(Comment.user_id.in_(user_ids))
    rows = await session.execute(
        select(Comment.id, Comment.pattern_id)
        .where(or_(Comment.user_id.in_(user_ids), Comment.parent_id.in_(opened)))
        .order_by(Comment.id)
        .with_for_update()
    )
    amounts: dict[str, int] = {}
    for _comment_id, pattern_id in rows.all():
        amounts[pattern_id] = amounts.get(pattern_id, 0) + 1
    return amounts


def _leaving() -> Select[str]:
    """The ids of accounts awaiting deletion (few, found by the index on the date)."""
    return select(User.id).where(User.deletion_scheduled_at.is_not(None))


async def _count_follows(session: AsyncSession, mine: Any, theirs: Any, user_id: str) -> int:
    # All follows counted from the index alone, then those of accounts awaiting deletion
    # taken off: one primary-key probe per such account (a check per row keeps
    # PostgreSQL from joining them to every follow of a much-followed account).
    every = await session.execute(select(func.count()).select_from(Follow).where(mine == user_id))
    follows_them = select(literal(True)).where(theirs == User.id, mine == user_id).scalar_subquery()
    leaving = await session.execute(
        select(func.count())
        .select_from(User)
        .where(User.deletion_scheduled_at.is_not(None), follows_them.is_(True))
    )
    return int(every.scalar_one()) - int(leaving.scalar_one())


async def follower_count(session: AsyncSession, user_id: str) -> int:
    """How many active accounts follow `user_id` (counted, so always exact)."""
    return await _count_follows(session, Follow.followee_id, Follow.follower_id, user_id)


async def following_count(session: AsyncSession, user_id: str) -> int:
    """How many active accounts `user_id` follows."""
    return await _count_follows(session, Follow.follower_id, Follow.followee_id, user_id)


async def add_follow(session: AsyncSession, follower_id: str, followee_id: str) -> bool:
    """One follow row (idempotent); True when this call added it."""
    return await insert_ignoring_conflict(
        session,
        Follow.__table__,
        {"follower_id": follower_id, "followee_id": followee_id, "created_at": utcnow()},
        ["follower_id", "followee_id"],
    )


async def remove_follow(session: AsyncSession, follower_id: str, followee_id: str) -> bool:
    """Delete the follow row; True when this call removed it."""
    result = await session.execute(
        delete(Follow).where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
    )
    return getattr(result, "rowcount", 0) == 1


async def people_page(
    session: AsyncSession, user_id: str, params: PageParams, *, followers: bool
) -> tuple[list[User], Pagination]:
    """The followers (or, with `followers=False`, the followees) of `user_id`, newest
    follow first, active accounts only: one query for the page, one for the total."""
    mine, theirs = (
        (Follow.followee_id, Follow.follower_id)
        if followers
        else (Follow.follower_id, Follow.followee_id)
    )
    # The page is cut from the follows index alone (accounts awaiting deletion left out
    # by a hashed lookup of the few there are); only its rows are joined to their users,
    # so a far page costs little more than the first.
    page_ids = (
        select(theirs.label("user_id"), Follow.created_at.label("followed_at"))
        .where(mine == user_id, theirs.not_in(_leaving()))
        .order_by(Follow.created_at.desc(), theirs.desc())
        .limit(params.limit)
        .offset(params.offset)
        .subquery()
    )
    page = (
        select(User)
        .join(page_ids, User.id == page_ids.c.user_id)
        .order_by(page_ids.c.followed_at.desc(), page_ids.c.user_id.desc())
    )
    users = list((await session.execute(page)).scalars())
    total = await (follower_count if followers else following_count)(session, user_id)
    return users, params.pagination(total)


async def followed_among(session: AsyncSession, follower_id: str, user_ids: list[str]) -> set[str]:
    """Which of `user_ids` `follower_id` follows (one query for a whole page)."""
    if not user_ids:
        return set()
    rows = await session.execute(
        select(Follow.followee_id).where(
            Follow.follower_id == follower_id, Follow.followee_id.in_(user_ids)
        )
    )
    return set(rows.scalars())
