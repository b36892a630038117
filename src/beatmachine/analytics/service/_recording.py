"""Recording usage: each domain event the reports count becomes one usage event (or an
active day), written by a listener job, never by the request that did the thing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics import repository
from beatmachine.analytics.metrics import Kind
from beatmachine.analytics.models import UsageEvent
from beatmachine.analytics.ranges import Period, period_start
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState


def _too_old(state: AppState, day: date) -> bool:
    # A day whose raw events are no longer kept: its rollups are final.
    retention = timedelta(seconds=state.settings.analytics_event_retention)
    return day < utcnow().date() - retention


async def record_usage(
    session: AsyncSession,
    state: AppState,
    kind: Kind,
    occurred_at: datetime,
    *,
    user_id: str | None,
    pattern_id: str | None = None,
    flavor: str | None = None,
    bpm: int | None = None,
    key_note: int | None = None,
    instruments: Sequence[str] = (),
) -> UsageEvent | None:
    """Write one usage event; None (nothing written) when its account is gone by now or
    its day is past the retention of raw events."""
    day = occurred_at.date()
    if _too_old(state, day):
        return None
    if user_id is not None and await repository.signed_up_on(session, user_id) is None:
        return None
    event = UsageEvent(
        kind=kind.value,
        day=day,
        occurred_at=occurred_at,
        recorded_at=utcnow(),
        user_id=user_id,
        pattern_id=pattern_id,
        flavor=flavor,
        bpm=bpm,
        key_note=key_note,
    )
    await repository.add_event(session, event, instruments)
    return event


async def record_active(session: AsyncSession, state: AppState, user_id: str, day: date) -> bool:
    """Note that the account was used on `day` (once per account and day); False when it
    already was, or the account is gone."""
    if _too_old(state, day):
        return False
    signed_up = await repository.signed_up_on(session, user_id)
    if signed_up is None:
        return False
    cohort = period_start(Period.WEEK, signed_up)
    return await repository.add_active_day(session, user_id, day, cohort, utcnow())
