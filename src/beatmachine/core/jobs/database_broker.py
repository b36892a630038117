"""The job queue of the embedded set-up: a taskiq broker whose queue is a database table.

Nothing needs to run beside the API process, and nothing is lost when it stops: a job
stays in `job_queue` until a worker has run it. A worker leases the rows it takes and
renews the lease while they run; a graceful stop hands its leases back at once, a killed
process's leases simply run out. Several processes (an API process and `beatmachine
worker`) can share the table: a claim is one atomic UPDATE (with SKIP LOCKED on
PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import AckableMessage, AsyncBroker, BrokerMessage

from beatmachine.core.db import shielded, transaction
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.jobs.labels import being_cancelled, delay_of
from beatmachine.core.jobs.models import QueuedJob

log = structlog.get_logger(__name__)

CLAIM_BATCH = 10
MIN_PAUSE_SECONDS = 0.5
MAX_PAUSE_SECONDS = 10.0


class DatabaseBroker(AsyncBroker):
    """Queue rows in the database; see the module's docstring."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        lease_seconds: float,
        poll_seconds: float = 1.0,
    ) -> None:
        super().__init__()
        self._sessionmaker = sessionmaker
        self._lease = timedelta(seconds=lease_seconds)
        self._poll_seconds = poll_seconds
        self._owner = new_id("wrk")
        self._wake = asyncio.Event()
        self._in_flight: set[str] = set()
        self._listening = False

    async def kick(self, message: BrokerMessage) -> None:
        """Queue one job (durably: it is in the table when this returns)."""
        await self.kick_many([message])

    async def kick_many(self, messages: Sequence[BrokerMessage]) -> None:
        """Queue several jobs in one transaction."""
        if not messages:
            return
        now = utcnow()
        rows = [
            {
                "id": new_id("qjb"),
                "task_name": message.task_name,
                "message": message.message,
                "available_at": now + timedelta(seconds=delay_of(message.labels)),
                "lease_until": None,
                "lease_owner": None,
                "created_at": now,
            }
            for message in messages
        ]
        async with transaction(self._sessionmaker) as session:
            await session.execute(insert(QueuedJob), rows)
        self._wake.set()

    async def listen(self) -> AsyncGenerator[bytes | AckableMessage, None]:
        """Yield due jobs as they come; each is acknowledged (deleted) once it has run."""
        heartbeat = asyncio.create_task(self._renew_leases(), name="job-lease-heartbeat")
        pause = 0.0
        self._listening = True
        try:
            while self._listening:
                if pause:
                    await asyncio.sleep(pause)
                try:
                    # Shielded: a stopping worker cancels this generator, and a claim cut
                    # off half-way would keep its connection (the write lock, on SQLite).
                    # The rows it claimed count as in flight, so `release` hands them back.
                    claimed = await shielded(self._claim())
                    pause = 0.0
                    if not claimed:
                        await self._wait_for_work()
                        continue
                except (SQLAlchemyError, OSError) as exc:
                    if being_cancelled():
                        raise asyncio.CancelledError from exc
                    # The database is away: wait for it rather than end the worker.
                    log.warning("job_queue_unreachable", error=type(exc).__name__)
                    pause = min(MAX_PAUSE_SECONDS, max(MIN_PAUSE_SECONDS, pause * 2))
                    continue
                for job_id, data in claimed:
                    yield AckableMessage(data=data, ack=self._acknowledger(job_id))
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _claim(self) -> list[tuple[str, bytes]]:
        now = utcnow()
        async with transaction(self._sessionmaker) as session:
            due = (
                select(QueuedJob.id)
                .where(
                    QueuedJob.available_at <= now,
                    or_(QueuedJob.lease_until.is_(None), QueuedJob.lease_until < now),
                )
                .order_by(QueuedJob.available_at, QueuedJob.id)
                .limit(CLAIM_BATCH)
            )
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            rows = await session.execute(
                update(QueuedJob)
                .where(QueuedJob.id.in_(due.scalar_subquery()))
                .values(lease_until=now + self._lease, lease_owner=self._owner)
                .returning(QueuedJob.id, QueuedJob.message, QueuedJob.available_at)
                .execution_options(synchronize_session=False)
            )
            claimed = sorted(rows.all(), key=lambda row: (row[2], row[0]))
        self._in_flight.update(job_id for job_id, _, _ in claimed)
        return [(job_id, bytes(data)) for job_id, data, _ in claimed]

    async def _wait_for_work(self) -> None:
        """Until a job is queued here, or the next delayed job is due, or the poll
        interval passes (another process may have queued one)."""
        timeout = self._poll_seconds
        next_due = await shielded(self._next_due())
        if next_due is not None:
            timeout = max(0.0, min(timeout, (next_due - utcnow()).total_seconds()))
        self._wake.clear()
        if not self._listening:  # asked to stop while this turn ran
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _next_due(self) -> datetime | None:
        async with self._sessionmaker() as session:
            return (await session.execute(select(func.min(QueuedJob.available_at)))).scalar()

    def _acknowledger(self, job_id: str) -> Callable[[], Awaitable[None]]:
        async def delete_row() -> None:
            async with transaction(self._sessionmaker) as session:
                await session.execute(delete(QueuedJob).where(QueuedJob.id == job_id))
            self._in_flight.discard(job_id)

        async def acknowledge() -> None:
            await shielded(delete_row())

        return acknowledge

    async def _renew_leases(self) -> None:
        interval = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            if not self._in_flight:
                continue
            try:
                await shielded(self._extend_leases())
            except Exception:
                # The lease then runs out and the job runs again elsewhere: at least once.
                log.exception("job_lease_renewal_failed")

    async def _extend_leases(self) -> None:
        async with transaction(self._sessionmaker) as session:
            await session.execute(
                update(QueuedJob)
                .where(
                    QueuedJob.id.in_(list(self._in_flight)), QueuedJob.lease_owner == self._owner
                )
                .values(lease_until=utcnow() + self._lease)
            )

    def stop_listening(self) -> None:
        """End `listen` at its next turn (a claim, or a wait of at most the poll interval,
        which this cuts short)."""
        self._listening = False
        self._wake.set()

    async def release(self) -> None:
        """Hand back the leases of jobs taken but not finished (a graceful stop), so that
        the next start, or another process, runs them at once."""
        if not self._in_flight:
            return
        async with transaction(self._sessionmaker) as session:
            await session.execute(
                update(QueuedJob)
                .where(
                    QueuedJob.id.in_(list(self._in_flight)), QueuedJob.lease_owner == self._owner
                )
                .values(lease_until=None, lease_owner=None)
            )
        self._in_flight.clear()

    async def backlog(self) -> int:
        """Jobs queued and not yet finished (delayed ones included)."""
        async with self._sessionmaker() as session:
            count = (await session.execute(select(func.count()).select_from(QueuedJob))).scalar()
        return int(count or 0)
