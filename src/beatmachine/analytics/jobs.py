"""Periodic jobs of the analytics domain: the rollup and the removal of raw events past
their retention."""

from __future__ import annotations

from beatmachine.analytics import service
from beatmachine.core.jobs import PeriodicJob
from beatmachine.core.state import AppState

ROLLUP_JOB = "analytics-rollup"
PRUNE_JOB = "analytics-prune-events"
PRUNE_EVERY_SECONDS = 3600


def register(state: AppState) -> None:
    """The rollup every `ANALYTICS_ROLLUP_EVERY` seconds, the prune hourly."""

    async def roll_up(_period: int) -> int:
        return len((await service.roll_up(state)).days)

    async def prune(_period: int) -> int:
        return await service.prune_events(state)

    state.scheduler.add(PeriodicJob(ROLLUP_JOB, state.settings.analytics_rollup_every, roll_up))
    state.scheduler.add(PeriodicJob(PRUNE_JOB, PRUNE_EVERY_SECONDS, prune))
