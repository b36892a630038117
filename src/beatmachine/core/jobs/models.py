"""Tables of the job queue: the embedded set-up's queue itself, and jobs that failed for
good (kept, with their last error, until an admin retries them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from beatmachine.core.db import Base
from beatmachine.core.ids import utcnow


class QueuedJob(Base):
    """A job waiting in the database queue (embedded set-up): kept until a worker has run
    it, so a job queued or running when the process stopped runs after the next start.
    A worker leases the rows it runs and renews the lease while they run; a lease that
    runs out (the worker died) makes the row available again."""

    __tablename__ = "job_queue"
    __table_args__ = (Index("ix_job_queue_available_at", "available_at", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(200))
    message: Mapped[bytes] = mapped_column(LargeBinary)
    available_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FailedJob(Base):
    """A job that exhausted its retries: what it was asked to do and why it failed last.
    `status` is `failed`, or `retrying` once an admin sent it again (the row goes when
    that run succeeds, and is `failed` again if it fails for good)."""

    __tablename__ = "failed_jobs"
    __table_args__ = (Index("ix_failed_jobs_status_failed_at", "status", "failed_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64))
    task_name: Mapped[str] = mapped_column(String(200))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    first_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    retried_at: Mapped[datetime | None]
