"""Finding a pattern the caller may see, own or like."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.patterns import repository
from beatmachine.patterns.exceptions import NotPatternOwner, PatternNotFound
from beatmachine.patterns.models import Pattern
from beatmachine.users.models import User

log = structlog.get_logger(__name__)


async def get_live(session: AsyncSession, pattern_id: str, *, for_update: bool = False) -> Pattern:
    """A pattern that is not deleted, or `PatternNotFound`; `for_update` locks its row."""
    pattern = await session.get(Pattern, pattern_id, with_for_update=for_update)
    if pattern is None or pattern.deleted_at is not None:
        raise PatternNotFound()
    return pattern


async def get_visible(session: AsyncSession, pattern_id: str, viewer: User | None) -> Pattern:
    """A pattern the viewer may see; someone else's private pattern is simply not found."""
    pattern = await get_live(session, pattern_id)
    if not pattern.is_public and (viewer is None or viewer.id != pattern.user_id):
        raise PatternNotFound()
    return pattern


async def get_owned(session: AsyncSession, pattern_id: str, user: User) -> Pattern:
    """The caller's own pattern, locked for the change about to be made."""
    pattern = await get_live(session, pattern_id, for_update=True)
    if pattern.user_id != user.id:
        if not pattern.is_public:
            raise PatternNotFound()
        raise NotPatternOwner()
    return pattern


async def author_of(session: AsyncSession, pattern: Pattern) -> User:
    """The account that owns `pattern`."""
    user = await session.get(User, pattern.user_id)
    assert user is not None  # the foreign key guarantees it
    return user


async def is_liked(session: AsyncSession, pattern: Pattern, viewer: User | None) -> bool:
    """Whether `viewer` likes `pattern` (never for an anonymous viewer)."""
    if viewer is None:
        return False
    return pattern.id in await repository.liked_by(session, viewer.id, [pattern.id])
