"""HTTP routes for operators (administrators only): jobs that failed for good."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from beatmachine.admin import service
from beatmachine.admin.schemas import FailedJobList, FailedJobOut, RetriedJob
from beatmachine.auth.dependencies import AdminUser
from beatmachine.core.db import SessionDep
from beatmachine.core.jobs import failures
from beatmachine.core.jobs.models import FailedJob
from beatmachine.core.pagination import PageDep
from beatmachine.core.schemas import Envelope, error_responses, ok
from beatmachine.core.state import StateDep

router = APIRouter(prefix="/admin", tags=["admin"])


def _out(row: FailedJob) -> FailedJobOut:
    return FailedJobOut(
        id=row.id,
        name=row.task_name,
        status="retrying" if row.status == "retrying" else "failed",
        attempts=row.attempts,
        error=row.error,
        first_failed_at=row.first_failed_at,
        failed_at=row.failed_at,
        retried_at=row.retried_at,
    )


@router.get(
    "/jobs", response_model=Envelope[FailedJobList], responses=error_responses(401, 403, 422)
)
async def list_failed_jobs(
    session: SessionDep,
    page: PageDep,
    _admin: AdminUser,
    status: Annotated[Literal["failed", "retrying"] | None, Query()] = None,
) -> Envelope[FailedJobList]:
    """Jobs that exhausted their retries, the latest failure first; `status=failed` for
    those not sent again yet, `status=retrying` for those sent again and not done."""
    rows, pagination = await failures.list_failed(session, page, status)
    return ok(FailedJobList(jobs=[_out(row) for row in rows], pagination=pagination))


@router.get(
    "/jobs/{job_id}",
    response_model=Envelope[FailedJobOut],
    responses=error_responses(401, 403, 404),
)
async def get_failed_job(
    job_id: str, session: SessionDep, _admin: AdminUser
) -> Envelope[FailedJobOut]:
    """One failed job, with its last error."""
    return ok(_out(await failures.get_failed(session, job_id)))


@router.post(
    "/jobs/{job_id}/retry",
    status_code=202,
    response_model=Envelope[RetriedJob],
    responses=error_responses(401, 403, 404, 409),
)
async def retry_failed_job(
    job_id: str, session: SessionDep, state: StateDep, _admin: AdminUser
) -> Envelope[RetriedJob]:
    """Send a failed job again (202: it runs in the background). A job already sent again
    and not finished is 409."""
    row = await service.retry_failed_job(session, state.jobs, job_id)
    return ok(RetriedJob(job=_out(row)))
