"""Queries of the social domain."""

from __future__ import annotations

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

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
    """Delete `comment` and, when it opens a thread, its replies; returns the ids gone."""
    ids = list(
        (
            await session.execute(
                select(Comment.id).where(
                    or_(Comment.id == comment.id, Comment.parent_id == comment.id)
                )
            )
        ).scalars()
    )
    await session.execute(delete(Comment).where(Comment.id.in_(ids)))
    return ids


async def comments_left_by(session: AsyncSession, user_ids: list[str]) -> dict[str, int]:
    """For each pattern, how many of its comments go with the accounts `user_ids`: their
    own, and the replies in the threads they opened (one grouped query)."""
    opened = select(Comment.id).where(Comment.user_id.in_(user_ids))
    rows = await session.execute(
        select(Comment.pattern_id, func.count())
        .where(or_(Comment.user_id.in_(user_ids), Comment.parent_id.in_(opened)))
        .group_by(Comment.pattern_id)
    )
    return {pattern_id: int(count) for pattern_id, count in rows.all()}


async def follower_count(session: AsyncSession, user_id: str) -> int:
    """How many active accounts follow `user_id` (counted, so always exact)."""
    value = await session.execute(
        select(func.count())
        .select_from(Follow)
        .join(User, User.id == Follow.follower_id)
        .where(Follow.followee_id == user_id, User.deletion_scheduled_at.is_(None))
    )
    return int(value.scalar_one())


async def following_count(session: AsyncSession, user_id: str) -> int:
    """How many active accounts `user_id` follows."""
    value = await session.execute(
        select(func.count())
        .select_from(Follow)
        .join(User, User.id == Follow.followee_id)
        .where(Follow.follower_id == user_id, User.deletion_scheduled_at.is_(None))
    )
    return int(value.scalar_one())


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
    page = (
        select(User)
        .join(Follow, User.id == theirs)
        .where(mine == user_id, User.deletion_scheduled_at.is_(None))
        .order_by(Follow.created_at.desc(), theirs.desc())
        .limit(params.limit)
        .offset(params.offset)
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
