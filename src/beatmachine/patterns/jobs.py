"""Periodic jobs of the patterns domain."""

from __future__ import annotations

from beatmachine.core.jobs import PeriodicJob
from beatmachine.core.state import AppState
from beatmachine.patterns import service

PURGE_EVERY_SECONDS = 3600


def periodic_jobs(state: AppState) -> list[PeriodicJob]:
    """The purge of patterns deleted more than the restore window ago, hourly."""

    async def purge(_period: int) -> int:
        return await service.purge_deleted(state)

    return [PeriodicJob("purge-deleted-patterns", PURGE_EVERY_SECONDS, purge)]
