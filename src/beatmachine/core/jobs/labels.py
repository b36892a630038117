"""The taskiq message labels the job queue uses, read the same way by every broker."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

# Seconds to wait before the job may run (retries with backoff).
DELAY = "delay"
# Unix time at which the message was handed to the broker (enqueue-to-start latency).
SENT_AT = "sent_at"
# Retries done so far (taskiq's retry middleware keeps it).
RETRIES = "_retries"
MAX_RETRIES = "max_retries"
# A job an admin sent again after it failed for good: the failed job's id.
FAILED_JOB = "failed_job_id"


def delay_of(labels: Mapping[str, Any]) -> float:
    """The `delay` label in seconds (0 when absent or not a number)."""
    try:
        return max(0.0, float(labels.get(DELAY) or 0))
    except (TypeError, ValueError):
        return 0.0


def being_cancelled() -> bool:
    """Whether the running task has been asked to stop: a cancel that a library turned
    into an error of its own must still end a broker's loop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
