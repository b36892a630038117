"""Response shapes of the operators' endpoints."""

from __future__ import annotations

from typing import Literal

from beatmachine.core.pagination import Pagination
from beatmachine.core.schemas import CamelModel, Timestamp


class FailedJobOut(CamelModel):
    """A job that exhausted its retries. Its arguments are not shown: they can hold what
    only its recipient may read (an e-mail with a reset link)."""

    id: str
    name: str
    status: Literal["failed", "retrying"]
    attempts: int
    error: str
    first_failed_at: Timestamp
    failed_at: Timestamp
    retried_at: Timestamp | None


class FailedJobList(CamelModel):
    jobs: list[FailedJobOut]
    pagination: Pagination


class RetriedJob(CamelModel):
    job: FailedJobOut
