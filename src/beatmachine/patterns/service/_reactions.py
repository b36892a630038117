"""Likes, plays, forks and the comment count: exact counters under concurrency."""

from __future__ import annotations

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core import events
from beatmachine.core.db import insert_ignoring_conflict
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.patterns import repository
from beatmachine.patterns.events import (
    PatternForked,
    PatternLiked,
    PatternPlayed,
    PatternUnliked,
)
from beatmachine.patterns.models import Pattern, PatternLike
from beatmachine.patterns.schemas import PatternCreate
from beatmachine.patterns.service._cache import changed
from beatmachine.patterns.service._reading import get_visible
from beatmachine.patterns.service._snapshots import snapshot
from beatmachine.patterns.service._writing import create
from beatmachine.users.models import User

log = structlog.get_logger(__name__)


FORK_SUFFIX = " (Fork)"


async def like(session: AsyncSession, state: AppState, user: User, pattern_id: str) -> int:
    """Idempotent: liking twice counts once. Returns the like count."""
    pattern = await get_visible(session, pattern_id, user)
    added = await insert_ignoring_conflict(
        session,
        PatternLike.__table__,
        {"pattern_id": pattern.id, "user_id": user.id, "created_at": utcnow()},
        ["pattern_id", "user_id"],
    )
    changed(session, state.cache, pattern, counts=False)
    if added:
        events.record(
            session,
            PatternLiked(pattern_id=pattern.id, owner_id=pattern.user_id, user_id=user.id),
        )
        return await repository.bump(session, pattern.id, "likes_count", 1) or 0
    return await repository.counter(session, pattern.id, "likes_count")


async def unlike(session: AsyncSession, state: AppState, user: User, pattern_id: str) -> int:
    """Idempotent: unliking what is not liked changes nothing. Returns the like count."""
    pattern = await get_visible(session, pattern_id, user)
    result = await session.execute(
        delete(PatternLike).where(
            PatternLike.pattern_id == pattern.id, PatternLike.user_id == user.id
        )
    )
    changed(session, state.cache, pattern, counts=False)
    if getattr(result, "rowcount", 0) == 1:
        events.record(
            session,
            PatternUnliked(pattern_id=pattern.id, owner_id=pattern.user_id, user_id=user.id),
        )
        return await repository.bump(session, pattern.id, "likes_count", -1) or 0
    return await repository.counter(session, pattern.id, "likes_count")


async def play(session: AsyncSession, state: AppState, viewer: User | None, pattern_id: str) -> int:
    """Count a play: one atomic UPDATE, exact however many arrive at once."""
    pattern = await get_visible(session, pattern_id, viewer)
    count = await repository.bump(session, pattern.id, "plays_count", 1)
    changed(session, state.cache, pattern, counts=False)
    events.record(
        session,
        PatternPlayed(
            pattern_id=pattern.id,
            owner_id=pattern.user_id,
            player_id=viewer.id if viewer is not None else None,
        ),
    )
    return count or 0


async def count_comments(
    session: AsyncSession, state: AppState, pattern: Pattern, delta: int
) -> int:
    """Add `delta` to the pattern's comment count in one atomic UPDATE (exact however
    many comments arrive at once); returns the new count."""
    count = await repository.bump(session, pattern.id, "comments_count", delta)
    changed(session, state.cache, pattern, counts=False)
    return count or 0


async def uncount_comments(session: AsyncSession, state: AppState, amounts: dict[str, int]) -> None:
    """Take comments that are going (with an account being purged) off the counts of the
    patterns they were on: `amounts` maps pattern ids to how many."""
    await repository.subtract(session, "comments_count", amounts)
    for pattern in await repository.by_ids(session, list(amounts)):
        changed(session, state.cache, pattern, counts=False)


async def fork(session: AsyncSession, state: AppState, user: User, pattern_id: str) -> Pattern:
    """Copy a pattern the caller can see into a new private pattern of theirs."""
    original = await get_visible(session, pattern_id, user)
    title = original.title[: 200 - len(FORK_SUFFIX)] + FORK_SUFFIX
    body = PatternCreate.model_validate(
        {
            **snapshot(original),
            "title": title,
            "isPublic": False,
        }
    )
    copy = await create(session, state, user, body, original_id=original.id)
    await repository.bump(session, original.id, "forks_count", 1)
    changed(session, state.cache, original, counts=False)
    events.record(
        session,
        PatternForked(
            pattern_id=original.id, owner_id=original.user_id, fork_id=copy.id, user_id=user.id
        ),
    )
    return copy
