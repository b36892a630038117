"""Domain events through the outbox, on both back ends: recorded with the change, never
for a rolled-back one, delivered at least once and applied once per listener."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core import events
from beatmachine.core.db import SessionDep, transaction
from beatmachine.core.errors import Conflict
from beatmachine.core.events import DELIVER_JOB, Delivered, DomainEvent, EventDelivery
from beatmachine.core.ids import utcnow
from beatmachine.core.outbox import OutboxMessage
from beatmachine.core.state import AppState
from beatmachine.patterns.events import PatternCreated, PatternPlayed
from tests.jobs import settle
from tests.waiting import eventually

RETRIES = 3


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"JOB_RETRIES": RETRIES, "JOB_RETRY_BASE_DELAY": 0.01, "JOB_RETRY_MAX_DELAY": 0.02}


class Rehearsed(DomainEvent):
    """An event of the tests' own."""

    name = "test.rehearsed"
    step: int


class Collect:
    """A listener that keeps what it was given, and fails the first `failures` times."""

    def __init__(self, failures: int = 0) -> None:
        self.received: list[Delivered[Any]] = []
        self.calls = 0
        self.failures = failures

    async def __call__(self, _session: AsyncSession, delivered: Delivered[Any]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("not yet")
        self.received.append(delivered)


def listen(state: AppState, event_type: type[DomainEvent], failures: int = 0) -> Collect:
    listener = Collect(failures)
    state.events.listen(event_type, f"test.collect.{event_type.name}", listener)
    return listener


async def deliveries_of(db: AsyncSession, event_id: str) -> int:
    """How many delivery records the event has (one per listener that applied it)."""
    statement = select(func.count()).select_from(EventDelivery)
    count = (await db.execute(statement.where(EventDelivery.event_id == event_id))).scalar_one()
    await db.commit()
    return int(count)


async def record_and_commit(state: AppState, event: DomainEvent) -> str:
    async with transaction(state.sessionmaker) as session:
        return events.record(session, event)


async def test_a_committed_event_reaches_its_listener(state: AppState) -> None:
    listener = listen(state, Rehearsed)

    event_id = await record_and_commit(state, Rehearsed(step=1))
    await settle(state)

    [delivered] = listener.received
    assert delivered.id == event_id
    assert event_id.startswith("evt_")
    assert delivered.event == Rehearsed(step=1)
    assert abs(utcnow() - delivered.occurred_at) < timedelta(minutes=1)


async def test_every_listener_of_an_event_gets_it(state: AppState) -> None:
    first, second = Collect(), Collect()
    state.events.listen(Rehearsed, "test.first", first)
    state.events.listen(Rehearsed, "test.second", second)

    await record_and_commit(state, Rehearsed(step=2))
    await settle(state)

    assert [d.event.step for d in first.received] == [2]
    assert [d.event.step for d in second.received] == [2]


async def test_a_listener_does_not_get_other_events(state: AppState) -> None:
    listener = listen(state, PatternPlayed)

    await record_and_commit(state, Rehearsed(step=3))
    await settle(state)

    assert listener.received == []


async def test_a_transaction_that_rolls_back_emits_nothing(state: AppState) -> None:
    listener = listen(state, Rehearsed)

    with pytest.raises(RuntimeError):
        async with transaction(state.sessionmaker) as session:
            events.record(session, Rehearsed(step=1))
            raise RuntimeError("rolled back")
    # The event after it is delivered: the first one would have come before it.
    await record_and_commit(state, Rehearsed(step=2))
    await settle(state)

    assert [d.event.step for d in listener.received] == [2]


async def test_a_request_that_rolls_back_emits_nothing(
    app: FastAPI, client: httpx.AsyncClient, state: AppState
) -> None:
    listener = listen(state, Rehearsed)

    @app.post("/api/test-events/{step}")
    async def record_then_maybe_fail(step: int, session: SessionDep) -> dict[str, Any]:
        events.record(session, Rehearsed(step=step))
        if step == 1:
            raise Conflict("refused after recording")
        return {"success": True, "data": {}}

    refused = await client.post("/api/test-events/1")
    accepted = await client.post("/api/test-events/2")
    await settle(state)

    assert refused.status_code == 409
    assert accepted.status_code == 200
    assert [d.event.step for d in listener.received] == [2]


async def test_a_redelivered_event_changes_nothing_twice(state: AppState, db: AsyncSession) -> None:
    listener = listen(state, Rehearsed)
    event_id = await record_and_commit(state, Rehearsed(step=5))
    await settle(state)
    [delivered] = listener.received

    again = await state.events.deliver("test.collect.test.rehearsed", delivered)
    await state.jobs.submit(
        DELIVER_JOB,
        listener="test.collect.test.rehearsed",
        event={
            "id": event_id,
            "name": Rehearsed.name,
            "occurredAt": "2026-12-01T00:00:00.000Z",
            "data": {"step": 5},
        },
    )
    await settle(state)

    assert again is False
    assert listener.calls == 1
    rows = (
        await db.execute(
            select(func.count())
            .select_from(EventDelivery)
            .where(EventDelivery.event_id == event_id)
        )
    ).scalar_one()
    assert rows == 1


async def test_a_listener_that_fails_is_retried_and_applies_the_event_once(
    state: AppState,
) -> None:
    listener = listen(state, Rehearsed, failures=RETRIES - 1)

    await record_and_commit(state, Rehearsed(step=6))
    await settle(state)

    assert listener.calls == RETRIES
    assert [d.event.step for d in listener.received] == [6]


async def test_a_failed_listener_leaves_no_delivery_record(
    state: AppState, db: AsyncSession
) -> None:
    listen(state, Rehearsed, failures=100)

    event_id = await record_and_commit(state, Rehearsed(step=7))
    await settle(state)

    count = (
        await db.execute(
            select(func.count())
            .select_from(EventDelivery)
            .where(EventDelivery.event_id == event_id)
        )
    ).scalar_one()
    assert count == 0


async def test_an_event_recorded_by_another_process_is_relayed_by_this_one(
    state: AppState,
) -> None:
    """A session without this process's relay (a CLI command, a crashed process) leaves the
    event in the outbox; the polling relay picks it up."""
    listener = listen(state, Rehearsed)

    async with state.sessionmaker() as session:
        session.info.clear()  # no relay to wake
        events.record(session, Rehearsed(step=8))
        await session.commit()

    await eventually(lambda: asyncio.sleep(0, result=bool(listener.received)))
    assert [d.event.step for d in listener.received] == [8]


async def test_a_relayed_event_is_kept_and_marked_relayed(
    state: AppState, db: AsyncSession
) -> None:
    event_id = await record_and_commit(state, Rehearsed(step=9))
    await settle(state)

    row = (await db.execute(select(OutboxMessage).where(OutboxMessage.id == event_id))).scalar_one()
    assert row.kind == "event"
    assert row.name == "test.rehearsed"
    assert row.payload == {"step": 9}
    assert row.relayed_at is not None


async def test_pruning_forgets_old_relayed_events_and_keeps_the_rest(
    state: AppState, db: AsyncSession
) -> None:
    listen(state, Rehearsed)
    old = await record_and_commit(state, Rehearsed(step=1))
    recent = await record_and_commit(state, Rehearsed(step=2))
    await settle(state)
    long_ago = utcnow() - timedelta(seconds=state.settings.event_retention + 60)
    async with transaction(state.sessionmaker) as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == old).values(relayed_at=long_ago)
        )
        await session.execute(
            update(EventDelivery).where(EventDelivery.event_id == old).values(delivered_at=long_ago)
        )

    removed = await state.events.prune()

    assert removed == 1
    kept = set((await db.execute(select(OutboxMessage.id))).scalars())
    delivered = set((await db.execute(select(EventDelivery.event_id))).scalars())
    assert kept == {recent}
    assert delivered == {recent}


async def test_pruning_is_a_periodic_job(state: AppState) -> None:
    assert "events.prune" in [job.name for job in state.scheduler.jobs]


async def test_an_event_type_is_checked_when_delivered(state: AppState) -> None:
    listener = listen(state, PatternCreated)

    async with transaction(state.sessionmaker) as session:
        events.record(
            session,
            PatternCreated(
                pattern_id="pat_x",
                owner_id="usr_x",
                title="Tumbao",
                flavor="Salsa",
                bpm=180,
                key_note=5,
                is_public=True,
                instruments=["clave"],
                original_id=None,
            ),
        )
    await settle(state)

    [delivered] = listener.received
    assert isinstance(delivered.event, PatternCreated)
    assert delivered.event.instruments == ["clave"]
