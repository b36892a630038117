"""Periodic jobs of the auth domain."""

from __future__ import annotations

from beatmachine.auth import service
from beatmachine.core.jobs import PeriodicJob
from beatmachine.core.state import AppState

PURGE_EVERY_SECONDS = 3600


def periodic_jobs(state: AppState) -> list[PeriodicJob]:
    """The purge of accounts whose deletion grace period is over, hourly."""

    async def purge(_period: int) -> int:
        return await service.purge_deleted_accounts(state)

    return [PeriodicJob("purge-deleted-accounts", PURGE_EVERY_SECONDS, purge)]
