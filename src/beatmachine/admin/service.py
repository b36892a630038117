"""What operators do with the platform: failed jobs, looked at and sent again."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.errors import Conflict
from beatmachine.core.jobs import JobQueue, UnknownJob, failures, labels
from beatmachine.core.jobs.models import FailedJob


class JobNoLongerExists(Conflict):
    message = "This kind of job no longer exists in this version; it cannot be sent again."


async def retry_failed_job(session: AsyncSession, jobs: JobQueue, job_id: str) -> FailedJob:
    """Send a failed job again with a fresh set of attempts, once the transaction commits.
    It stays listed as `retrying` until that run succeeds (then it is gone) or fails for
    good (then it is `failed` again, its attempts added up)."""
    row = await failures.mark_retrying(session, job_id)
    try:
        jobs.enqueue(
            session, row.task_name, job_labels={labels.FAILED_JOB: row.id}, **row.arguments
        )
    except UnknownJob as exc:
        raise JobNoLongerExists() from exc
    return row
