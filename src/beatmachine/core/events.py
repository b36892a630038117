"""Domain events: what happened in one domain, for the domains after it to react to.

The sending domain defines its events (`patterns/events.py`) and records them with
`record(session, event)` inside the transaction of the change: they go through the
outbox, so a rolled-back change emits nothing and a committed one is never lost. A
listening domain registers a handler in its `setup` with `EventBus.listen`; the sender
never imports it.

Each (event, listener) pair is one job on the queue. Delivery is at least once, in no
guaranteed order; a listener runs in a transaction together with a row in
`event_deliveries` keyed by (listener, event id), so an event delivered again changes
nothing a second time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy import Index, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from beatmachine.core import outbox
from beatmachine.core.db import Base, insert_ignoring_conflict, transaction
from beatmachine.core.ids import isoformat_z, new_id, utcnow
from beatmachine.core.jobs import JobCall, JobQueue, PeriodicJob, Scheduler

log = structlog.get_logger(__name__)

EVENT = "event"
DELIVER_JOB = "events.deliver"
PRUNE_JOB = "events.prune"
PRUNE_EVERY_SECONDS = 3600


class DomainEvent(BaseModel):
    """Base of every event; a subclass sets `name` (`pattern.created`) and its fields."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)
    name: ClassVar[str]


E = TypeVar("E", bound=DomainEvent)


@dataclass(frozen=True)
class Delivered(Generic[E]):
    """An event as a listener receives it: its id (for idempotency), when it happened,
    and the event."""

    id: str
    occurred_at: datetime
    event: E


class EventDelivery(Base):
    """Which listener has handled which event (written with the listener's changes)."""

    __tablename__ = "event_deliveries"
    __table_args__ = (Index("ix_event_deliveries_delivered_at", "delivered_at"),)

    listener: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivered_at: Mapped[datetime] = mapped_column(default=utcnow)


def record(session: AsyncSession, event: DomainEvent) -> str:
    """Record `event` as part of the session's transaction; returns its id."""
    event_id = new_id("evt")
    outbox.add(
        session,
        message_id=event_id,
        kind=EVENT,
        name=event.name,
        payload=event.model_dump(mode="json", by_alias=True),
    )
    return event_id


Listener = Callable[[AsyncSession, Delivered[Any]], Awaitable[None]]


@dataclass(frozen=True)
class _Registration:
    event_type: type[DomainEvent]
    handler: Listener


class EventBus:
    """The listeners of one app instance, and the jobs that deliver events to them."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: JobQueue,
        relay: outbox.Relay,
        scheduler: Scheduler,
        *,
        retention_seconds: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._queue = queue
        self._relay = relay
        self._listeners: dict[str, _Registration] = {}
        self._by_event: dict[str, list[str]] = {}
        self._retention = timedelta(seconds=retention_seconds)
        queue.register(DELIVER_JOB, self._deliver)
        relay.route(EVENT, self._fan_out)
        scheduler.add(PeriodicJob(PRUNE_JOB, PRUNE_EVERY_SECONDS, self._prune_periodically))

    def listen(
        self,
        event_type: type[E],
        name: str,
        handler: Callable[[AsyncSession, Delivered[E]], Awaitable[None]],
    ) -> None:
        """Call `handler(session, delivered)` for every `event_type` event. `name` is the
        listener's stable id (`social.feed`): it keys idempotency, so keep it."""
        if name in self._listeners:
            raise ValueError(f"a listener is already named {name!r}")
        self._listeners[name] = _Registration(event_type, handler)
        self._by_event.setdefault(event_type.name, []).append(name)

    def listeners_of(self, event_name: str) -> list[str]:
        """The names of the listeners of `event_name`."""
        return list(self._by_event.get(event_name, []))

    async def _fan_out(self, messages: Sequence[outbox.OutboxMessage]) -> None:
        calls = [
            JobCall(
                DELIVER_JOB,
                {
                    "listener": listener,
                    "event": {
                        "id": message.id,
                        "name": message.name,
                        "occurredAt": isoformat_z(message.created_at),
                        "data": message.payload,
                    },
                },
            )
            for message in messages
            for listener in self._by_event.get(message.name, [])
        ]
        if calls:
            await self._queue.submit_many(calls)

    async def _deliver(self, listener: str, event: dict[str, Any]) -> None:
        registration = self._listeners.get(listener)
        if registration is None:
            # A listener removed since: the event has nobody left to tell.
            log.warning("event_listener_unknown", listener=listener, event_id=event.get("id"))
            return
        delivered = Delivered(
            id=str(event["id"]),
            occurred_at=datetime.fromisoformat(str(event["occurredAt"]).replace("Z", "+00:00")),
            event=registration.event_type.model_validate(event["data"]),
        )
        await self.deliver(listener, delivered)

    async def deliver(self, listener: str, delivered: Delivered[Any]) -> bool:
        """Run one listener on one event unless it already handled it; returns whether it
        ran. What the listener changes commits together with the delivery record."""
        registration = self._listeners[listener]
        async with transaction(self._sessionmaker) as session:
            first_time = await insert_ignoring_conflict(
                session,
                EventDelivery.__table__,
                {"listener": listener, "event_id": delivered.id, "delivered_at": utcnow()},
                ["listener", "event_id"],
            )
            if not first_time:
                log.info("event_already_delivered", listener=listener, event_id=delivered.id)
                return False
            await registration.handler(session, delivered)
        return True

    async def _prune_periodically(self, _period: int) -> int:
        return await self.prune()

    async def prune(self) -> int:
        """Periodic job: forget relayed events and their delivery records past the
        retention (`EVENT_RETENTION`)."""
        before = utcnow() - self._retention
        removed = await self._relay.prune(before)
        async with transaction(self._sessionmaker) as session:
            old = select(EventDelivery.event_id).where(EventDelivery.delivered_at < before)
            if (await session.execute(old.limit(1))).first() is not None:
                await session.execute(
                    delete(EventDelivery).where(EventDelivery.delivered_at < before)
                )
        return removed
