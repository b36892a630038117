"""Periodic background jobs.

In the embedded set-up the API process runs them; in production `beatmachine
worker` does. Each run takes a lease in the cache first, so that when many
processes run the scheduler a job still runs once per period.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from beatmachine.core.cache import Cache
from beatmachine.core.metrics import Metrics

log = structlog.get_logger(__name__)

JobFunc = Callable[[], Awaitable[int]]


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_seconds: int
    run: JobFunc


class Scheduler:
    def __init__(self, cache: Cache, metrics: Metrics) -> None:
        self._cache = cache
        self._metrics = metrics
        self._jobs: list[PeriodicJob] = []
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, job: PeriodicJob) -> None:
        self._jobs.append(job)

    @property
    def jobs(self) -> list[PeriodicJob]:
        return list(self._jobs)

    async def run_once(self, job: PeriodicJob) -> int:
        """Run `job` now; returns what it reports (rows handled)."""
        try:
            handled = await job.run()
        except Exception:
            self._metrics.jobs.labels(job.name, "failed").inc()
            log.exception("job_failed", job=job.name)
            return 0
        self._metrics.jobs.labels(job.name, "ok").inc()
        log.info("job_done", job=job.name, handled=handled)
        return handled

    async def _loop(self, job: PeriodicJob) -> None:
        lease_key = f"job-lease:{job.name}"
        while True:
            token = secrets.token_hex(8).encode()
            if await self._cache.get(lease_key) is None:
                await self._cache.set(lease_key, token, ttl=max(1, job.every_seconds - 1))
                if await self._cache.get(lease_key) == token:
                    await self.run_once(job)
            await asyncio.sleep(job.every_seconds)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(job), name=job.name) for job in self._jobs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
