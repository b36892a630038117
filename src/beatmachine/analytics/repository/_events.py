"""Writing usage events and active days."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics.models import ActiveDay, UsageEvent, UsageEventInstrument
from beatmachine.core.db import insert_ignoring_conflict
from beatmachine.users.models import User


async def signed_up_on(session: AsyncSession, user_id: str) -> date | None:
    """The UTC day the account was created, or None when it no longer exists."""
    created = (
        await session.execute(select(User.created_at).where(User.id == user_id))
    ).scalar_one_or_none()
    return None if created is None else created.date()


async def add_event(
    session: AsyncSession, event: UsageEvent, instruments: Sequence[str] = ()
) -> None:
    """Write a usage event, and one row per instrument it names."""
    session.add(event)
    await session.flush()
    if instruments:
        await session.execute(
            insert(UsageEventInstrument),
            [
                {"event_id": event.id, "instrument": instrument, "day": event.day}
                for instrument in dict.fromkeys(instruments)
            ],
        )


async def add_active_day(
    session: AsyncSession, user_id: str, day: date, cohort: date, recorded_at: datetime
) -> bool:
    """Note that the account was active on `day`; False when it already was."""
    return await insert_ignoring_conflict(
        session,
        ActiveDay,
        {"user_id": user_id, "day": day, "cohort": cohort, "recorded_at": recorded_at},
        ["user_id", "day"],
    )
