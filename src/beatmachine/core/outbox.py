"""The transactional outbox: what a unit of work asks to happen next (domain events, jobs)
is written in the same transaction as the change itself, and a relay hands it to the job
queue once committed.

So a rolled-back request sends nothing, and a process that dies between its commit and
the hand-off loses nothing: the rows wait in `outbox` until a relay in any process picks
them up. A relay claims a batch for `CLAIM_SECONDS` (one UPDATE, SKIP LOCKED on
PostgreSQL), hands it on, then marks it relayed; a relay that dies half-way leaves its
claim to run out, and the batch is handed on again: delivery is at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

import structlog
from sqlalchemy import JSON, Index, String, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from beatmachine.core.db import Base, after_commit, shielded, transaction
from beatmachine.core.ids import utcnow
from beatmachine.core.metrics import Metrics

log = structlog.get_logger(__name__)

CLAIM_SECONDS = 30
RELAY_BATCH = 500
POLL_SECONDS = 1.0
# Woken by a commit, the relay first waits this long, so that the commits of concurrent
# requests are handed on as one batch (two statements) rather than one batch each.
GATHER_SECONDS = 0.02
STOP_SECONDS = 10.0
PRUNE_BATCH = 5000
# Relayed events stay for `EVENT_RETENTION` (what happened, for a while); a relayed job
# is gone at once (its arguments, an e-mail with a reset link say, are nobody's record).
KEPT_KINDS = frozenset({"event"})
# Where a session finds the relay of its process, to wake it after the commit
# (`create_sessionmaker(..., info=...)` puts it in every session's `info`).
WAKE_RELAY = "outbox.wake"


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "created_at",
            "id",
            postgresql_where=text("relayed_at IS NULL"),
            sqlite_where=text("relayed_at IS NULL"),
        ),
        Index("ix_outbox_relayed_at", "relayed_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    relayed_at: Mapped[datetime | None]


def add(session: AsyncSession, *, message_id: str, kind: str, name: str, payload: Any) -> None:
    """Write a message into the outbox within the session's transaction; the relay of
    this process is woken once it commits (the others find it when they next look)."""
    session.add(
        OutboxMessage(id=message_id, kind=kind, name=name, payload=payload, created_at=utcnow())
    )
    wake: Callable[[], Awaitable[None]] | None = session.info.get(WAKE_RELAY)
    if wake is not None and not session.info.get("outbox.wake_registered"):
        session.info["outbox.wake_registered"] = True
        after_commit(session, wake)


Handler = Callable[[Sequence[OutboxMessage]], Awaitable[None]]


class Relay:
    """Hands committed outbox messages to the handler of their kind; see the module."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], metrics: Metrics) -> None:
        self._sessionmaker = sessionmaker
        self._metrics = metrics
        self._handlers: dict[str, Handler] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def route(self, kind: str, handler: Handler) -> None:
        """Send messages of `kind` to `handler` (it must raise if it could not take them)."""
        self._handlers[kind] = handler

    async def wake(self) -> None:
        """Look at the outbox now (after a commit that wrote to it)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Hand on one batch of committed messages; returns how many."""
        now = utcnow()
        async with transaction(self._sessionmaker) as session:
            pending = (
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.relayed_at.is_(None),
                    or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
                )
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
                .limit(RELAY_BATCH)
            )
            if session.get_bind().dialect.name == "postgresql":
                pending = pending.with_for_update(skip_locked=True)
            claimed = list(
                (
                    await session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_(pending.scalar_subquery()))
                        .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
                        .returning(OutboxMessage)
                        .execution_options(synchronize_session=False)
                    )
                ).scalars()
            )
        if not claimed:
            return 0
        claimed.sort(key=lambda message: (message.kind, message.created_at, message.id))
        for kind, group in groupby(claimed, key=lambda message: message.kind):
            messages = list(group)
            handler = self._handlers.get(kind)
            if handler is None:
                log.error("outbox_kind_unknown", kind=kind, count=len(messages))
                continue
            await handler(messages)
            self._metrics.outbox_relayed.labels(kind).inc(len(messages))
        kept = [message.id for message in claimed if message.kind in KEPT_KINDS]
        done = [message.id for message in claimed if message.kind not in KEPT_KINDS]
        async with transaction(self._sessionmaker) as session:
            if kept:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(kept))
                    .values(relayed_at=utcnow(), claimed_until=None)
                )
            if done:
                await session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(done)))
        return len(claimed)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                handled = await shielded(self.relay_once())
                failures = 0
            except Exception:
                failures += 1
                log.exception("outbox_relay_failed")
                handled = 0
            if handled >= RELAY_BATCH:
                continue
            self._wake.clear()
            if self._stopping:  # asked while this turn ran: its wake-up was just cleared
                break
            timeout = POLL_SECONDS * min(2**failures, 30)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
                if not self._stopping:
                    await asyncio.sleep(GATHER_SECONDS)

    def start(self) -> None:
        """Relay in the background until `stop`."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop relaying after the batch in hand; what is still unrelayed waits for the
        next relay."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_SECONDS)
        except TimeoutError:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def pending(self) -> int:
        """Messages not yet relayed."""
        async with self._sessionmaker() as session:
            count = (
                await session.execute(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.relayed_at.is_(None))
                )
            ).scalar()
        return int(count or 0)

    async def prune(self, relayed_before: datetime) -> int:
        """Delete messages relayed before `relayed_before`, in batches (short locks)."""
        removed = 0
        while True:
            async with transaction(self._sessionmaker) as session:
                batch = (
                    select(OutboxMessage.id)
                    .where(OutboxMessage.relayed_at < relayed_before)
                    .limit(PRUNE_BATCH)
                    .scalar_subquery()
                )
                result = await session.execute(
                    delete(OutboxMessage).where(OutboxMessage.id.in_(batch))
                )
            count = int(getattr(result, "rowcount", 0) or 0)
            removed += count
            if count < PRUNE_BATCH:
                return removed
