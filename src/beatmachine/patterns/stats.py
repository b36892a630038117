"""The profile counts the patterns domain owns."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.patterns import service


async def profile_counts(session: AsyncSession, user_id: str) -> dict[str, int]:
    """The profile counts of patterns: created, and shared publicly."""
    created, shared = await service.count_for_user(session, user_id)
    return {"patterns_created": created, "patterns_shared": shared}
