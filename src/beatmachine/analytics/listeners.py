"""What the analytics domain records when things happen elsewhere: patterns created,
saved, played and liked, accounts registered and used."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics import service
from beatmachine.analytics.metrics import Kind
from beatmachine.core.events import Delivered, DomainEvent
from beatmachine.core.state import AppState
from beatmachine.patterns.events import PatternCreated, PatternLiked, PatternPlayed, PatternUpdated
from beatmachine.users.events import UserActive, UserRegistered

E = TypeVar("E", bound=DomainEvent)
# What an event says about its usage event: the account and the pattern's settings.
Describe = Callable[[E], dict[str, Any]]
Handler = Callable[[AsyncSession, Delivered[Any]], Awaitable[None]]


def _recorder(state: AppState, kind: Kind, describe: Describe[E]) -> Handler:
    async def record(session: AsyncSession, delivered: Delivered[E]) -> None:
        await service.record_usage(
            session, state, kind, delivered.occurred_at, **describe(delivered.event)
        )

    return record


def _settings_of(event: PatternCreated | PatternUpdated) -> dict[str, Any]:
    return {
        "user_id": event.owner_id,
        "pattern_id": event.pattern_id,
        "flavor": event.flavor,
        "bpm": event.bpm,
        "key_note": event.key_note,
        "instruments": event.instruments,
    }


def _played(event: PatternPlayed) -> dict[str, Any]:
    return {"user_id": event.player_id, "pattern_id": event.pattern_id}


def _liked(event: PatternLiked) -> dict[str, Any]:
    return {"user_id": event.user_id, "pattern_id": event.pattern_id}


def _registered(event: UserRegistered) -> dict[str, Any]:
    return {"user_id": event.user_id}


def register(state: AppState) -> None:
    """Listen to the events the reports count."""

    async def active(session: AsyncSession, delivered: Delivered[UserActive]) -> None:
        await service.record_active(session, state, delivered.event.user_id, delivered.event.day)

    events = state.events
    events.listen(
        PatternCreated,
        "analytics.pattern_created",
        _recorder(state, Kind.PATTERN_CREATED, _settings_of),
    )
    events.listen(
        PatternUpdated,
        "analytics.pattern_saved",
        _recorder(state, Kind.PATTERN_SAVED, _settings_of),
    )
    events.listen(
        PatternPlayed, "analytics.pattern_played", _recorder(state, Kind.PATTERN_PLAYED, _played)
    )
    events.listen(
        PatternLiked, "analytics.pattern_liked", _recorder(state, Kind.PATTERN_LIKED, _liked)
    )
    events.listen(
        UserRegistered,
        "analytics.user_registered",
        _recorder(state, Kind.USER_REGISTERED, _registered),
    )
    events.listen(UserActive, "analytics.user_active", active)
