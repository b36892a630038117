"""taskiq middlewares of the job queue: retries with exponential backoff and jitter
(failed-for-good jobs kept with their last error), and the metrics and bookkeeping of
every run."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.exceptions import NoResultError
from taskiq.middlewares import SmartRetryMiddleware

from beatmachine.core.jobs import labels
from beatmachine.core.metrics import Metrics

log = structlog.get_logger(__name__)

# (message, exception, attempts made) -> None: keep a job that failed for good.
FailureRecorder = Callable[[TaskiqMessage, BaseException, int], Awaitable[None]]
# (message) -> None: a job sent again by an admin has now succeeded.
RecoveryRecorder = Callable[[TaskiqMessage], Awaitable[None]]


def backoff_delay(retries: int, *, base: float, cap: float) -> float:
    """Seconds to wait before retry number `retries` (1 for the first): `base * 2**(n-1)`,
    at most `cap`, drawn between half and all of that (jitter)."""
    ceiling = min(cap, base * 2 ** (retries - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not a secret)


class BackoffRetryMiddleware(SmartRetryMiddleware):
    """Retry a failed job after `base * 2**(n-1)` seconds (capped), with jitter: the wait
    is drawn between half and all of that, so jobs that failed together (an SMTP relay
    that went down) do not all come back at the same moment. taskiq's own middleware
    grows the delay linearly; the rest of its behaviour (labels, re-sending) is kept.
    After the last attempt the job is recorded as failed."""

    def __init__(
        self,
        *,
        attempts: int,
        base_delay: float,
        max_delay: float,
        record_failure: FailureRecorder,
    ) -> None:
        super().__init__(
            default_retry_count=attempts,
            default_retry_label=True,
            no_result_on_retry=True,
            default_delay=base_delay,
            use_jitter=True,
            use_delay_exponent=True,
            max_delay_exponent=max_delay,
        )
        self._record_failure = record_failure

    def make_delay(self, message: TaskiqMessage, retries: int) -> float:
        """The wait before retry number `retries` (1 for the first)."""
        return backoff_delay(retries, base=self.default_delay, cap=self.max_delay_exponent)

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        """Send the job again after its backoff, or keep it as failed after its last try."""
        if isinstance(exception, NoResultError):
            return
        attempts = int(message.labels.get(labels.RETRIES, 0)) + 1
        allowed = int(message.labels.get(labels.MAX_RETRIES, self.default_retry_count))
        await super().on_error(message, result, exception)
        log.warning(
            "job_attempt_failed",
            job=message.task_name,
            task_id=message.task_id,
            attempt=attempts,
            of=allowed,
            error=f"{type(exception).__name__}: {exception}",
        )
        if attempts >= allowed:
            await self._record_failure(message, exception, attempts)


class RunTracking(TaskiqMiddleware):
    """Metrics of every job (runs by outcome, duration, enqueue-to-start latency), the
    count of runs in progress, and the end of a failed job that an admin retried."""

    def __init__(self, metrics: Metrics, record_recovery: RecoveryRecorder) -> None:
        super().__init__()
        self._metrics = metrics
        self._record_recovery = record_recovery
        self._started: dict[str, float] = {}
        self.running = 0

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        """Stamp the time the message is handed to the broker."""
        message.labels[labels.SENT_AT] = str(time.time())
        return message

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        """Count the run and how long the job waited for a worker."""
        now = time.time()
        self.running += 1
        self._started[message.task_id] = time.perf_counter()
        try:
            due = float(message.labels.get(labels.SENT_AT, now)) + labels.delay_of(message.labels)
        except (TypeError, ValueError):
            due = now
        self._metrics.job_latency.labels(message.task_name).observe(max(0.0, now - due))
        return message

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        """Record the outcome; a retried failed job that succeeded is no longer failed."""
        self.running -= 1
        started = self._started.pop(message.task_id, None)
        if started is not None:
            self._metrics.job_duration.labels(message.task_name).observe(
                time.perf_counter() - started
            )
        if not result.is_err:
            outcome = "ok"
        elif isinstance(result.error, NoResultError):
            outcome = "retried"  # the retry middleware sent it again
        else:
            outcome = "failed"
        self._metrics.jobs.labels(message.task_name, outcome).inc()
        if not result.is_err and message.labels.get(labels.FAILED_JOB):
            await self._record_recovery(message)
