"""Jobs that failed for good: kept with their last error; admins list them and retry one."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import TaskiqMessage

from beatmachine.core.db import transaction
from beatmachine.core.errors import Conflict, NotFound
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.jobs import labels
from beatmachine.core.jobs.models import FailedJob
from beatmachine.core.pagination import PageParams, Pagination, paginate

MAX_ERROR_CHARS = 2000
FailedStatus = Literal["failed", "retrying"]


class JobNotFound(NotFound):
    code, message = "JOB_NOT_FOUND", "No such failed job."


class JobAlreadyRetrying(Conflict):
    message = "This job has been sent again already; wait for that run."


def describe(exception: BaseException) -> str:
    """The error as kept and shown to admins: its type and message, bounded."""
    return f"{type(exception).__name__}: {exception}"[:MAX_ERROR_CHARS]


class FailedJobs:
    """Keeps failed jobs (written by the retry middleware, outside any request)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def record(self, message: TaskiqMessage, exception: BaseException, attempts: int) -> None:
        """Keep a job that exhausted its retries; a job an admin had sent again updates
        its own row instead of adding one."""
        now = utcnow()
        failed_id = str(message.labels.get(labels.FAILED_JOB) or "")
        async with transaction(self._sessionmaker) as session:
            row = await session.get(FailedJob, failed_id) if failed_id else None
            if row is None:
                session.add(
                    FailedJob(
                        id=new_id("fjb"),
                        task_id=message.task_id,
                        task_name=message.task_name,
                        arguments=message.kwargs,
                        error=describe(exception),
                        attempts=attempts,
                        status="failed",
                        first_failed_at=now,
                        failed_at=now,
                    )
                )
            else:
                row.error = describe(exception)
                row.attempts += attempts
                row.status = "failed"
                row.failed_at = now

    async def recovered(self, message: TaskiqMessage) -> None:
        """A job an admin sent again has succeeded: it is no longer failed."""
        failed_id = str(message.labels.get(labels.FAILED_JOB) or "")
        async with transaction(self._sessionmaker) as session:
            await session.execute(delete(FailedJob).where(FailedJob.id == failed_id))


async def list_failed(
    session: AsyncSession, params: PageParams, status: FailedStatus | None
) -> tuple[list[FailedJob], Pagination]:
    """Failed jobs, the most recent failure first; `status` narrows to one state."""
    statement = select(FailedJob).order_by(FailedJob.failed_at.desc(), FailedJob.id.desc())
    if status is not None:
        statement = statement.where(FailedJob.status == status)
    return await paginate(session, statement, params)


async def get_failed(session: AsyncSession, job_id: str, *, for_update: bool = False) -> FailedJob:
    """One failed job, or `JobNotFound`."""
    row = await session.get(FailedJob, job_id, with_for_update=for_update)
    if row is None:
        raise JobNotFound()
    return row


async def mark_retrying(session: AsyncSession, job_id: str) -> FailedJob:
    """Take a failed job for a new run (the caller queues it in the same transaction);
    one already sent again is `JobAlreadyRetrying`."""
    row = await get_failed(session, job_id, for_update=True)
    taken = await session.execute(
        update(FailedJob)
        .where(FailedJob.id == job_id, FailedJob.status == "failed")
        .values(status="retrying", retried_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        raise JobAlreadyRetrying()
    await session.refresh(row)
    return row
