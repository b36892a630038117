"""Database engine, declarative base, and the two owners of a transaction.

A request's transaction is owned by the session dependency; everything that is not a
request (CLI commands, start-up work, periodic jobs, job handlers) opens one with
`transaction()`. Both commit and then run the after-commit hooks, or roll back, drop
them and run the after-rollback hooks. Services only `flush()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

import anyio
import structlog
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, String, TypeDecorator, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool

from beatmachine.core.errors import AppError
from beatmachine.core.ids import as_utc, utcnow

log = structlog.get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every back end (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class IdMixin:
    """A string primary key; each model sets its prefix in `__id_prefix__`."""

    id: Mapped[str] = mapped_column(String(32), primary_key=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 20, echo: bool = False
) -> AsyncEngine:
    """An engine with pooling on PostgreSQL and sane pragmas on SQLite."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            echo=echo,
            poolclass=NullPool if ":memory:" not in url else None,
            connect_args={"timeout": 30},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, start transactions (below), so that
            # SAVEPOINTs nest inside a real transaction and roll back correctly.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # IMMEDIATE takes the write lock up front: a transaction that reads and then
            # writes waits its turn (busy_timeout) instead of failing as "locked".
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        # asyncpg prepares every statement, and after five runs PostgreSQL may switch to
        # one generic plan made for an average parameter: for a feed or a follower count
        # of one very active account that plan reads everything (17 s instead of 2 ms in
        # bench/social_scale.py). Planning each run costs far less than such a plan.
        connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


AfterCommit = Callable[[], Awaitable[None]]


async def release_connection(session: AsyncSession) -> None:
    """Commit what the request has done so far and give the connection back to the pool
    before slow work that needs no database (checking a password can wait for a hashing
    slot). Loaded objects stay usable (`expire_on_commit` is off); the next query starts
    a new transaction. After-commit callbacks still wait for the request's final commit.

    Call it only where what is pending may be committed on its own: nothing, or
    bookkeeping such as a session's last use.
    """
    await session.commit()


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the request's transaction has committed (never on rollback).

    Used to send e-mail, publish invalidations and enqueue jobs only for data
    that really was stored.
    """
    session.info.setdefault("after_commit", []).append(callback)


def after_rollback(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` if the request's transaction rolls back instead of committing.

    Used to remove what was written outside the database (files in storage) for rows
    that are then never stored. It runs shielded, after the rollback; an error in it is
    logged and does not hide the one that caused the rollback.
    """
    session.info.setdefault("after_rollback", []).append(callback)


async def _run_after_commit(session: AsyncSession) -> None:
    session.info.pop("after_rollback", None)
    callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
    for callback in callbacks:
        await callback()


async def _rolled_back(session: AsyncSession) -> None:
    session.info.pop("after_commit", None)
    callbacks: list[AfterCommit] = session.info.pop("after_rollback", [])
    # Shielded, and the hooks run however the rollback itself ends: a request cancelled
    # or a connection lost must not leave behind what the hooks clean up.
    with anyio.CancelScope(shield=True):
        try:
            await session.rollback()
        finally:
            for callback in callbacks:
                try:
                    await callback()
                except Exception:
                    log.exception("after_rollback_failed")


@asynccontextmanager
async def _owned_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except AppError as error:
            if error.keeps_changes:
                await session.commit()
            else:
                await _rolled_back(session)
            raise
        except BaseException:
            await _rolled_back(session)
            raise
    await _run_after_commit(session)


def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AbstractAsyncContextManager[AsyncSession]:
    """One unit of work outside a request: commit when the block succeeds and then run
    its after-commit hooks (cache invalidations, events handed on), or roll back and drop
    them. The one transaction owner of CLI commands, start-up work and jobs.

        async with transaction(state.sessionmaker) as session:
            await service.do_something(session, ...)
    """
    return _owned_transaction(sessionmaker)


T = TypeVar("T")


async def in_batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    step: Callable[[AsyncSession], Awaitable[int]],
    batch: int,
) -> int:
    """Run `step` (which removes or changes at most `batch` rows and says how many) in
    one transaction after another until it does less than a full batch; returns the sum.
    Short transactions keep a large clean-up from holding locks, or the SQLite write
    lock, for long."""
    total = 0
    while True:
        async with transaction(sessionmaker) as session:
            done = await step(session)
        total += done
        if done < batch:
            return total


async def shielded(work: Coroutine[Any, Any, T]) -> T:
    """Run a unit of database work to its end even if the caller is cancelled meanwhile
    (background loops being stopped): a driver call cut off half-way can leave its
    connection, and on SQLite the write lock, held."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # It goes on; retrieve its outcome so that a failure is not reported as lost.
        task.add_done_callback(lambda done: None if done.cancelled() else done.exception())
        raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with _owned_transaction(sessionmaker) as session:
        yield session


# scope="function": commit before the response is sent, so a client never sees
# success for data that failed to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def insert_ignoring_conflict(
    session: AsyncSession, table: Any, values: dict[str, Any], conflict_columns: list[str]
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on PostgreSQL and SQLite; True when a row was added.

    Idempotent writes (likes, follows) stay exact under concurrency without savepoints.
    """
    dialect_insert = (
        postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    )
    statement = (
        dialect_insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict_columns)
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0) == 1)
