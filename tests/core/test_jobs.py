"""The job queue on both back ends (database queue embedded, Redis Streams with Redis):
jobs run once committed, are retried with backoff, are kept when they fail for good, and
periodic jobs are queued once a period."""

from __future__ import annotations

from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import TaskiqMessage

from beatmachine.core.db import transaction
from beatmachine.core.jobs import JobQueue, PeriodicJob, Scheduler, UnknownJob
from beatmachine.core.jobs.leases import create_leases
from beatmachine.core.jobs.middleware import BackoffRetryMiddleware
from beatmachine.core.jobs.models import FailedJob
from beatmachine.core.outbox import OutboxMessage
from beatmachine.core.state import AppState
from beatmachine.users import service as users_service
from beatmachine.users.models import User
from tests.conftest import AppMaker
from tests.jobs import settle

RETRIES = 3


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"JOB_RETRIES": RETRIES, "JOB_RETRY_BASE_DELAY": 0.01, "JOB_RETRY_MAX_DELAY": 0.05}


class Recorder:
    """A job that remembers its calls and fails the first `failures` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failures = failures

    async def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if len(self.calls) <= self.failures:
            raise RuntimeError(f"attempt {len(self.calls)} failed")


def recorder(jobs: JobQueue, name: str, failures: int = 0) -> Recorder:
    job = Recorder(failures)
    jobs.register(name, job)
    return job


async def failed_jobs(db: AsyncSession) -> list[FailedJob]:
    rows = list((await db.execute(select(FailedJob))).scalars())
    await db.commit()
    return rows


# --- queueing -------------------------------------------------------------------------------


async def test_a_submitted_job_runs_once_with_its_arguments(state: AppState) -> None:
    job = recorder(state.jobs, "test.remember")

    await state.jobs.submit("test.remember", value=7, label="seven")
    await settle(state)

    assert job.calls == [{"value": 7, "label": "seven"}]


async def test_a_job_queued_in_a_committed_transaction_runs_and_sees_its_data(
    state: AppState,
) -> None:
    seen: list[str | None] = []

    async def look_up(user_id: str) -> None:
        async with state.sessionmaker() as session:
            user = await session.get(User, user_id)
            seen.append(None if user is None else user.email)

    state.jobs.register("test.look-up", look_up)
    async with transaction(state.sessionmaker) as session:
        user = await users_service.create_user(
            session,
            email="committed@example.com",
            display_name="Committed",
            password_hash=None,
            method="password",
        )
        state.jobs.enqueue(session, "test.look-up", user_id=user.id)

    await settle(state)

    assert seen == ["committed@example.com"]


async def test_a_job_queued_in_a_rolled_back_transaction_never_runs(state: AppState) -> None:
    job = recorder(state.jobs, "test.remember")

    with pytest.raises(RuntimeError, match="changed my mind"):
        async with transaction(state.sessionmaker) as session:
            state.jobs.enqueue(session, "test.remember", value="rolled back")
            raise RuntimeError("changed my mind")
    # A later job runs: had the first been queued, it would have run before it.
    async with transaction(state.sessionmaker) as session:
        state.jobs.enqueue(session, "test.remember", value="committed")
    await settle(state)

    assert job.calls == [{"value": "committed"}]


async def test_a_relayed_job_leaves_nothing_in_the_outbox(
    state: AppState, db: AsyncSession
) -> None:
    recorder(state.jobs, "test.remember")
    async with transaction(state.sessionmaker) as session:
        state.jobs.enqueue(session, "test.remember", value=1)

    await settle(state)

    count = (await db.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()
    assert count == 0


async def test_queueing_an_unknown_job_fails_in_the_caller(state: AppState) -> None:
    with pytest.raises(UnknownJob):
        async with transaction(state.sessionmaker) as session:
            state.jobs.enqueue(session, "test.nobody-registered-this")
    with pytest.raises(UnknownJob):
        await state.jobs.submit("test.nobody-registered-this")


# --- retries and failures ---------------------------------------------------------------------


async def test_a_failing_job_is_retried_until_it_succeeds(
    state: AppState, db: AsyncSession
) -> None:
    job = recorder(state.jobs, "test.flaky", failures=RETRIES - 1)

    await state.jobs.submit("test.flaky", value=1)
    await settle(state)

    assert job.calls == [{"value": 1}] * RETRIES
    assert await failed_jobs(db) == []


async def test_a_job_that_exhausts_its_retries_is_kept_with_its_last_error(
    state: AppState, db: AsyncSession
) -> None:
    job = recorder(state.jobs, "test.broken", failures=100)

    await state.jobs.submit("test.broken", value=1)
    await settle(state)

    assert len(job.calls) == RETRIES
    [failed] = await failed_jobs(db)
    assert failed.id.startswith("fjb_")
    assert failed.task_name == "test.broken"
    assert failed.arguments == {"value": 1}
    assert failed.attempts == RETRIES
    assert failed.status == "failed"
    assert failed.error == f"RuntimeError: attempt {RETRIES} failed"
    assert failed.retried_at is None


async def test_a_job_registered_with_its_own_attempts_keeps_to_them(
    state: AppState, db: AsyncSession
) -> None:
    job = Recorder(failures=100)
    state.jobs.register("test.once", job, attempts=1)

    await state.jobs.submit("test.once")
    await settle(state)

    assert len(job.calls) == 1
    [failed] = await failed_jobs(db)
    assert failed.attempts == 1


def test_retry_delays_grow_exponentially_within_their_cap() -> None:
    async def keep(_message: TaskiqMessage, _error: BaseException, _attempts: int) -> None:
        return None

    middleware = BackoffRetryMiddleware(
        attempts=10, base_delay=1.0, max_delay=30.0, record_failure=keep
    )
    message = TaskiqMessage(task_id="t", task_name="n", labels={}, args=[], kwargs={})
    for retry, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 30), (9, 30)]:
        for _draw in range(50):
            delay = middleware.make_delay(message, retry)
            assert ceiling / 2 <= delay <= ceiling, (retry, delay)


def test_retry_delays_are_jittered() -> None:
    async def keep(_message: TaskiqMessage, _error: BaseException, _attempts: int) -> None:
        return None

    middleware = BackoffRetryMiddleware(
        attempts=10, base_delay=1.0, max_delay=30.0, record_failure=keep
    )
    message = TaskiqMessage(task_id="t", task_name="n", labels={}, args=[], kwargs={})

    assert len({middleware.make_delay(message, 4) for _ in range(20)}) > 1


# --- surviving a stop ---------------------------------------------------------------------


async def test_a_job_queued_while_no_worker_runs_runs_after_the_next_start(
    make_app: AppMaker,
) -> None:
    first = make_app(RUN_WORKER=False)
    recorder(first.state.services.jobs, "test.remember")
    async with (
        LifespanManager(first),
        transaction(first.state.services.sessionmaker) as session,
    ):
        first.state.services.jobs.enqueue(session, "test.remember", value="kept")

    second = make_app()
    job = recorder(second.state.services.jobs, "test.remember")
    async with LifespanManager(second):
        await settle(second.state.services)

    assert job.calls == [{"value": "kept"}]


# --- periodic jobs ------------------------------------------------------------------------------


async def test_a_periodic_job_runs_on_the_queue(state: AppState) -> None:
    runs: list[int] = []

    async def count(period: int) -> int:
        runs.append(period)
        return 0

    scheduler = Scheduler(
        create_leases(state.settings.redis_url, state.cache, state.sessionmaker), state.jobs
    )
    scheduler.add(PeriodicJob("test.periodic-runs", 3600, count))

    assert await scheduler.tick(now=7200.0) == ["test.periodic-runs"]
    await settle(state)
    assert runs == [2]


async def test_a_periodic_job_is_queued_once_a_period_whoever_asks(state: AppState) -> None:
    async def nothing(_period: int) -> int:
        return 0

    schedulers = []
    for _process in range(3):
        scheduler = Scheduler(
            create_leases(state.settings.redis_url, state.cache, state.sessionmaker), state.jobs
        )
        scheduler.add(PeriodicJob("test.periodic-once", 60, nothing))
        schedulers.append(scheduler)

    for period in range(100, 104):
        queued = [await s.tick(now=period * 60.0 + offset) for offset, s in enumerate(schedulers)]
        assert sum(len(names) for names in queued) == 1, (period, queued)
        # Asking again within the same period queues nothing more.
        assert [await s.tick(now=period * 60.0 + 30) for s in schedulers] == [[], [], []]
    await settle(state)


async def test_a_period_already_taken_is_not_taken_by_a_late_scheduler(state: AppState) -> None:
    async def nothing(_period: int) -> int:
        return 0

    leases = create_leases(state.settings.redis_url, state.cache, state.sessionmaker)
    early, late = Scheduler(leases, state.jobs), Scheduler(leases, state.jobs)
    early.add(PeriodicJob("test.periodic-late", 60, nothing))
    late.add(PeriodicJob("test.periodic-late", 60, nothing))

    assert await early.tick(now=6000.0) == ["test.periodic-late"]
    assert await late.tick(now=6059.0) == []
    assert await late.tick(now=6060.0) == ["test.periodic-late"]
    await settle(state)
