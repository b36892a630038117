"""Waiting for background work: the outbox relayed, the job queue empty, no job running."""

from __future__ import annotations

import asyncio

from beatmachine.core.state import AppState

SETTLE_SECONDS = 30.0


async def settle(state: AppState) -> None:
    """Wait until everything the app queued so far has run (fails after 30 s)."""
    async with asyncio.timeout(SETTLE_SECONDS):
        await state.jobs.drain()
