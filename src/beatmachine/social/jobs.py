"""Jobs of the social domain: the fan-out of activities to feeds and their retention, and
the e-mails of notifications."""

from __future__ import annotations

from functools import partial

from beatmachine.core.jobs import PeriodicJob
from beatmachine.core.state import AppState
from beatmachine.social import service

PRUNE_ACTIVITIES_EVERY_SECONDS = 3600


def register(state: AppState) -> None:
    """Register the fan-out and e-mail jobs and the hourly removal of activities past
    retention."""
    state.jobs.register(service.FAN_OUT_JOB, partial(service.fan_out_batch, state))
    state.jobs.register(service.EMAIL_JOB, partial(service.send_email, state))

    async def prune(_period: int) -> int:
        return await service.prune_activities(state)

    state.scheduler.add(PeriodicJob("prune-activities", PRUNE_ACTIVITIES_EVERY_SECONDS, prune))
