"""What the webhooks domain does with the events of patterns and social: a delivery to
each subscribed endpoint, only for public content. The payload holds public fields only
(ids, titles, display names; never an e-mail). It is built only when some endpoint is
subscribed, so an event costs one query while nobody listens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.events import Delivered
from beatmachine.core.state import AppState
from beatmachine.patterns import service as patterns_service
from beatmachine.patterns.events import PatternCreated, PatternLiked
from beatmachine.patterns.exceptions import PatternNotFound
from beatmachine.social.events import CommentCreated, UserFollowed
from beatmachine.users import service as users_service
from beatmachine.webhooks import service

Data = dict[str, Any]


async def _people(session: AsyncSession, **ids: str) -> dict[str, dict[str, str]]:
    names = await users_service.display_names(session, set(ids.values()))
    return {role: {"id": uid, "displayName": names.get(uid, "")} for role, uid in ids.items()}


async def _public_title(session: AsyncSession, pattern_id: str) -> str | None:
    """The pattern's title if it is live and public, else None."""
    try:
        pattern = await patterns_service.get_live(session, pattern_id)
    except PatternNotFound:
        return None
    return pattern.title if pattern.is_public else None


async def _record(
    session: AsyncSession,
    state: AppState,
    delivered: Delivered[Any],
    data: Callable[[], Awaitable[Data | None]],
) -> None:
    await service.record_event(
        session,
        state.jobs,
        event_type=delivered.event.name,
        event_id=delivered.id,
        occurred_at=delivered.occurred_at,
        data=data,
    )


async def pattern_created(
    state: AppState, session: AsyncSession, delivered: Delivered[PatternCreated]
) -> None:
    """`pattern.created` of a public pattern."""
    event = delivered.event
    if not event.is_public:
        return

    async def data() -> Data:
        pattern = {
            "id": event.pattern_id,
            "title": event.title,
            "flavor": event.flavor,
            "bpm": event.bpm,
            "keyNote": event.key_note,
            "originalId": event.original_id,
        }
        return {"pattern": pattern, **await _people(session, owner=event.owner_id)}

    await _record(session, state, delivered, data)


async def pattern_liked(
    state: AppState, session: AsyncSession, delivered: Delivered[PatternLiked]
) -> None:
    """`pattern.liked` of a public pattern."""
    event = delivered.event

    async def data() -> Data | None:
        title = await _public_title(session, event.pattern_id)
        if title is None:
            return None
        return {
            "pattern": {"id": event.pattern_id, "title": title},
            **await _people(session, owner=event.owner_id, user=event.user_id),
        }

    await _record(session, state, delivered, data)


async def comment_created(
    state: AppState, session: AsyncSession, delivered: Delivered[CommentCreated]
) -> None:
    """`comment.created` on a public pattern (the text is not sent: fetch it from the
    API)."""
    event = delivered.event
    if not event.is_public:
        return

    async def data() -> Data | None:
        title = await _public_title(session, event.pattern_id)
        if title is None:
            return None
        return {
            "comment": {"id": event.comment_id, "parentId": event.parent_id},
            "pattern": {"id": event.pattern_id, "title": title},
            **await _people(session, owner=event.owner_id, user=event.user_id),
        }

    await _record(session, state, delivered, data)


async def user_followed(
    state: AppState, session: AsyncSession, delivered: Delivered[UserFollowed]
) -> None:
    """`user.followed` (follows are public: anyone can list them)."""
    event = delivered.event

    async def data() -> Data:
        return await _people(session, follower=event.follower_id, followee=event.followee_id)

    await _record(session, state, delivered, data)
