"""The job queue: taskiq on the Redis Streams broker (production) or on the database
broker (embedded), with retries, failed-job keeping and an in-process worker.

Domains register their jobs in their `setup` and queue them with `enqueue(session, …)`:
the job is written into the outbox inside the caller's transaction and reaches the
broker once committed (never for a rolled-back change, never lost after a commit).
`submit` hands a job to the broker at once, for callers that own no transaction (the
relay, the scheduler).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import AcknowledgeType, AsyncBroker, BrokerMessage, TaskiqMessage
from taskiq.labels import prepare_label
from taskiq.receiver import Receiver

from beatmachine.core import outbox
from beatmachine.core.config import Settings
from beatmachine.core.ids import new_id
from beatmachine.core.jobs import labels
from beatmachine.core.jobs.database_broker import DatabaseBroker
from beatmachine.core.jobs.failures import FailedJobs
from beatmachine.core.jobs.middleware import BackoffRetryMiddleware, RunTracking
from beatmachine.core.jobs.stream_broker import StreamBroker
from beatmachine.core.metrics import Metrics

log = structlog.get_logger(__name__)

JOB = "job"
DRAIN_POLL_SECONDS = 0.01
# How long a stopping worker lets running jobs finish before it leaves them to be run
# again (at least once) by the next worker.
STOP_GRACE_SECONDS = 10.0
WORKER_RESTART_SECONDS = 2.0

JobHandler = Callable[..., Awaitable[Any]]


class QueueBroker(Protocol):
    """What the queue needs of a broker beyond taskiq's `AsyncBroker`."""

    async def kick_many(self, messages: Sequence[BrokerMessage]) -> None: ...
    def stop_listening(self) -> None: ...
    async def release(self) -> None: ...
    async def backlog(self) -> int: ...


class UnknownJob(LookupError):
    """A job name no domain registered."""


@dataclass(frozen=True)
class JobCall:
    """One job to run: its registered name, keyword arguments and extra labels."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, Any] = field(default_factory=dict)


def create_broker(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> StreamBroker | DatabaseBroker:
    """Redis Streams when `REDIS_URL` is set, else the database queue."""
    if settings.redis_url:
        return StreamBroker(
            settings.redis_url,
            queue_name=f"{settings.redis_key_prefix}jobs",
            redelivery_timeout=settings.job_redelivery_timeout,
            read_count=settings.job_concurrency,
            max_connections=settings.job_concurrency + 10,
        )
    return DatabaseBroker(sessionmaker, lease_seconds=settings.job_redelivery_timeout)


class JobQueue:
    """See the module's docstring."""

    def __init__(
        self,
        broker: StreamBroker | DatabaseBroker,
        sessionmaker: async_sessionmaker[AsyncSession],
        relay: outbox.Relay,
        metrics: Metrics,
        settings: Settings,
    ) -> None:
        self._broker: AsyncBroker = broker
        self._queue_broker: QueueBroker = broker
        self.failures = FailedJobs(sessionmaker)
        self._tracking = RunTracking(metrics, self.failures.recovered)
        self._broker.add_middlewares(
            self._tracking,
            BackoffRetryMiddleware(
                attempts=settings.job_retries,
                base_delay=settings.job_retry_base_delay,
                max_delay=settings.job_retry_max_delay,
                record_failure=self.failures.record,
            ),
        )
        self._relay = relay
        self._concurrency = settings.job_concurrency
        self._worker: asyncio.Task[None] | None = None
        self._finish = asyncio.Event()
        self._started = False
        relay.route(JOB, self._relay_jobs)

    # --- registering and queueing ----------------------------------------------------

    def register(self, name: str, handler: JobHandler, *, attempts: int | None = None) -> None:
        """Make `handler(**kwargs)` the job `name`; `attempts` overrides `JOB_RETRIES`."""
        extra = {} if attempts is None else {labels.MAX_RETRIES: attempts}

        # A fresh function per job: taskiq renames the function it is given and files it
        # in its module (for process pools), which bound methods and shared functions
        # do not survive.
        async def run_job(**kwargs: Any) -> Any:
            return await handler(**kwargs)

        self._broker.register_task(run_job, task_name=name, **extra)

    def registered(self) -> list[str]:
        """The names of every registered job."""
        return sorted(self._broker.get_all_tasks())

    def enqueue(
        self,
        session: AsyncSession,
        name: str,
        /,
        *,
        job_labels: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Queue job `name` as part of the session's transaction (see the module)."""
        self._task(name)  # an unknown name fails here, in the caller, not in the relay
        outbox.add(
            session,
            message_id=new_id("obj"),
            kind=JOB,
            name=name,
            payload={"kwargs": kwargs, "labels": dict(job_labels or {})},
        )

    async def submit(self, name: str, /, **kwargs: Any) -> None:
        """Hand job `name` to the broker now."""
        await self.submit_many([JobCall(name, kwargs)])

    async def submit_many(self, calls: Sequence[JobCall]) -> None:
        """Hand several jobs to the broker in one round trip."""
        messages = [self._broker.formatter.dumps(self._message(call)) for call in calls]
        await self._queue_broker.kick_many(messages)

    def _task(self, name: str) -> Any:
        task = self._broker.find_task(name)
        if task is None:
            raise UnknownJob(f"no job is registered as {name!r}")
        return task

    def _message(self, call: JobCall) -> TaskiqMessage:
        merged = {**self._task(call.name).labels, **call.labels}
        prepared = {name: prepare_label(value) for name, value in merged.items()}
        message = TaskiqMessage(
            task_id=self._broker.id_generator(),
            task_name=call.name,
            labels={name: value for name, (value, _) in prepared.items()},
            labels_types={name: kind for name, (_, kind) in prepared.items()},
            args=[],
            kwargs=dict(call.kwargs),
        )
        return self._tracking.pre_send(message)

    async def _relay_jobs(self, messages: Sequence[outbox.OutboxMessage]) -> None:
        await self.submit_many(
            [
                JobCall(m.name, m.payload.get("kwargs", {}), m.payload.get("labels", {}))
                for m in messages
            ]
        )

    # --- running ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the broker (declares the Redis consumer group)."""
        if not self._started:
            await self._broker.startup()
            self._started = True

    def start_worker(self) -> None:
        """Run jobs in this process, in the background, until `stop_worker`."""
        if self._worker is not None:
            return
        self._finish.clear()
        self._worker = asyncio.create_task(self._work(), name="job-worker")

    async def _work(self) -> None:
        # The brokers ride out outages themselves; this is the last line: a receiver that
        # fails is replaced (after a pause) instead of leaving the process without one.
        while not self._finish.is_set():
            receiver = Receiver(
                broker=self._broker,
                executor=None,
                validate_params=False,
                max_async_tasks=self._concurrency,
                max_prefetch=0,
                run_startup=False,
                ack_type=AcknowledgeType.WHEN_EXECUTED,
                wait_tasks_timeout=STOP_GRACE_SECONDS,
            )
            try:
                await receiver.listen(self._finish)
            except Exception:
                log.exception("job_worker_failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._finish.wait(), WORKER_RESTART_SECONDS)

    async def stop_worker(self) -> None:
        """Take no new jobs, let running ones finish (for a while), hand back the rest."""
        if self._worker is None:
            return
        self._queue_broker.stop_listening()
        self._finish.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._worker), STOP_GRACE_SECONDS + 5)
        except TimeoutError:
            self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._worker
        self._worker = None
        await self._queue_broker.release()

    async def aclose(self) -> None:
        """Stop the worker and close the broker's connections."""
        await self.stop_worker()
        if self._started:
            await self._broker.shutdown()
            self._started = False

    async def backlog(self) -> int:
        """Jobs queued and not finished yet, delayed ones included (all processes)."""
        return await self._queue_broker.backlog()

    async def drain(self) -> None:
        """Wait until the outbox, the queue and this process's worker are all empty (tests;
        bound it with `asyncio.timeout`)."""
        idle_rounds = 0
        while True:
            await self._relay.wake()
            idle = (
                self._tracking.running == 0
                and await self._relay.pending() == 0
                and await self.backlog() == 0
            )
            # Twice in a row: a job finishing between two of the checks may have just
            # written to the outbox.
            idle_rounds = idle_rounds + 1 if idle else 0
            if idle_rounds >= 2:
                return
            await asyncio.sleep(DRAIN_POLL_SECONDS)
