"""What the social domain does when things happen elsewhere (and in itself): each domain
event becomes an activity in the feeds of its actor's followers, and a notification for
the person it happened to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.events import Delivered, DomainEvent
from beatmachine.core.state import AppState
from beatmachine.patterns.events import PatternCreated, PatternLiked
from beatmachine.social import service
from beatmachine.social.events import CommentCreated, UserFollowed
from beatmachine.social.service import ActivityRefs, ActivityType, NotificationType

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
    """Listen to the events that make activities and notifications."""
    _feed(state)
    _notifications(state)


def _feed(state: AppState) -> None:
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


def _notifications(state: AppState) -> None:
    async def liked(session: AsyncSession, delivered: Delivered[PatternLiked]) -> None:
        event = delivered.event
        await service.notify(
            session,
            state,
            NotificationType.PATTERN_LIKED,
            user_id=event.owner_id,
            actor_id=event.user_id,
            occurred_at=delivered.occurred_at,
            pattern_id=event.pattern_id,
        )

    async def commented(session: AsyncSession, delivered: Delivered[CommentCreated]) -> None:
        event = delivered.event
        told = {event.user_id}
        # The author of the comment answered hears of the reply; the pattern's owner of
        # the comment, unless they were told already as the one answered.
        for kind, recipient in (
            (NotificationType.COMMENT_REPLIED, event.replied_to_author_id),
            (NotificationType.PATTERN_COMMENTED, event.owner_id),
        ):
            if recipient is None or recipient in told:
                continue
            told.add(recipient)
            await service.notify(
                session,
                state,
                kind,
                user_id=recipient,
                actor_id=event.user_id,
                occurred_at=delivered.occurred_at,
                pattern_id=event.pattern_id,
                comment_id=event.comment_id,
            )

    async def followed(session: AsyncSession, delivered: Delivered[UserFollowed]) -> None:
        event = delivered.event
        await service.notify(
            session,
            state,
            NotificationType.USER_FOLLOWED,
            user_id=event.followee_id,
            actor_id=event.follower_id,
            occurred_at=delivered.occurred_at,
        )

    state.events.listen(PatternLiked, "social.notify.pattern_liked", liked)
    state.events.listen(CommentCreated, "social.notify.comment_created", commented)
    state.events.listen(UserFollowed, "social.notify.user_followed", followed)
