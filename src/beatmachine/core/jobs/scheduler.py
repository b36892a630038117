"""Periodic jobs, run on the job queue.

Time is cut into periods of each job's length (period n covers
`[n * every, (n + 1) * every)` in Unix time, the same in every process). Once a period,
each scheduler process tries to take that period's lease in one atomic step (see
`leases`); the one that gets it queues the job. However many processes run a scheduler,
a job is queued exactly once per period.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from beatmachine.core.db import shielded
from beatmachine.core.jobs.leases import Leases
from beatmachine.core.jobs.queue import JobQueue

log = structlog.get_logger(__name__)

TICK_SECONDS = 0.5


@dataclass(frozen=True)
class PeriodicJob:
    """`run(period)` once every `every_seconds`, where `period` is the number of the period
    it runs for (`int(time // every_seconds)`: the same in every process, so work can be
    keyed by it); it returns how many things it handled (logged)."""

    name: str
    every_seconds: float
    run: Callable[[int], Awaitable[int]]


class Scheduler:
    """See the module's docstring."""

    def __init__(self, leases: Leases, queue: JobQueue) -> None:
        self._leases = leases
        self._queue = queue
        self._jobs: list[PeriodicJob] = []
        self._task: asyncio.Task[None] | None = None
        self._last_period: dict[str, int] = {}
        self._stop = asyncio.Event()

    def add(self, job: PeriodicJob) -> None:
        """Register `job` on the queue and run it every period from `start` on."""

        async def run(period: int) -> None:
            handled = await job.run(period)
            log.info("periodic_job_done", job=job.name, period=period, handled=handled)

        self._queue.register(job.name, run)
        self._jobs.append(job)

    @property
    def jobs(self) -> list[PeriodicJob]:
        return list(self._jobs)

    async def tick(self, now: float | None = None) -> list[str]:
        """Queue every job whose current period this process leased; returns their names."""
        now = time.time() if now is None else now
        queued = []
        for job in self._jobs:
            period = int(now // job.every_seconds)
            if self._last_period.get(job.name) == period:
                continue
            self._last_period[job.name] = period
            # Outlives the period, so a process starting late in it cannot take it again.
            ttl = max(2, int(job.every_seconds * 2))
            if await self._leases.take(job.name, period, ttl):
                await self._queue.submit(job.name, period=period)
                queued.append(job.name)
        return queued

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await shielded(self.tick())
            except Exception:
                # A lost lease check (Redis down) skips at most this period of each job.
                log.exception("scheduler_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), TICK_SECONDS)

    def start(self) -> None:
        """Run the periodic jobs in the background until `stop`."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        """Stop after the tick in hand."""
        if self._task is not None:
            self._stop.set()
            await self._task
            self._task = None
