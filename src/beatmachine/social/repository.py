"""Queries of the social domain."""

from __future__ import annotations

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.social.models import Comment
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
