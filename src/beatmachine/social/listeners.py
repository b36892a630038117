"""What the social domain does when things happen elsewhere (and in itself): each domain
event becomes an activity in the feeds of its actor's followers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.events import Delivered, DomainEvent
from beatmachine.core.state import AppState
from beatmachine.patterns.events import PatternCreated, PatternLiked
from beatmachine.social import service
from beatmachine.social.events import CommentCreated, UserFollowed
from beatmachine.social.service import ActivityRefs, ActivityType

E = TypeVar("E", bound=DomainEvent)
# What an event says about its activity: the actor and what it names.
Describe = Callable[[E], ActivityRefs]
Handler = Callable[[AsyncSession, Delivered[Any]], Awaitable[None]]


def _recorder(state: AppState, kind: ActivityType, describe: Describe[E]) -> Handler:
    async def record(session: AsyncSession, delivered: Delivered[E]) -> None:
        await service.record_activity(
            session, state, kind, describe(delivered.event), delivered.occurred_at
        )

    return record


def _pattern_created(event: PatternCreated) -> ActivityRefs:
    return ActivityRefs(event.owner_id, pattern_id=event.pattern_id)


def _pattern_liked(event: PatternLiked) -> ActivityRefs:
    return ActivityRefs(event.user_id, pattern_id=event.pattern_id)


def _comment_created(event: CommentCreated) -> ActivityRefs:
    return ActivityRefs(event.user_id, pattern_id=event.pattern_id, comment_id=event.comment_id)


def _user_followed(event: UserFollowed) -> ActivityRefs:
    return ActivityRefs(event.follower_id, subject_id=event.followee_id)


def register(state: AppState) -> None:
    """Listen to the events that make activities."""
    events = state.events
    events.listen(
        PatternCreated,
        "social.feed.pattern_created",
        _recorder(state, ActivityType.PATTERN_CREATED, _pattern_created),
    )
    events.listen(
        PatternLiked,
        "social.feed.pattern_liked",
        _recorder(state, ActivityType.PATTERN_LIKED, _pattern_liked),
    )
    events.listen(
        CommentCreated,
        "social.feed.comment_created",
        _recorder(state, ActivityType.COMMENT_CREATED, _comment_created),
    )
    record_follow = _recorder(state, ActivityType.USER_FOLLOWED, _user_followed)

    async def user_followed(session: AsyncSession, delivered: Delivered[UserFollowed]) -> None:
        await record_follow(session, delivered)
        event = delivered.event
        await service.bring_into_feed(session, state, event.follower_id, event.followee_id)

    events.listen(UserFollowed, "social.feed.user_followed", user_followed)
