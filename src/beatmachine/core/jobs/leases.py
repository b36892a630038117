"""Leases on the periods of periodic jobs: whoever takes a period's lease runs the job
for that period; every other scheduler process is refused it. Each take is one atomic
step: `SET key value NX EX ttl` in Redis, or one upsert in the database when there is no
Redis (so an API process and `beatmachine worker` sharing one SQLite file agree too).
"""

from __future__ import annotations

import secrets
from typing import Protocol

from sqlalchemy import BigInteger, String
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from beatmachine.core.cache import Cache
from beatmachine.core.db import Base, transaction


class JobLease(Base):
    """The last period of each periodic job that some scheduler took."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    period: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str] = mapped_column(String(32))


class Leases(Protocol):
    async def take(self, name: str, period: int, ttl: int) -> bool:
        """Take period `period` of job `name`; True for exactly one caller per period."""
        ...


class CacheLeases:
    """Redis (or, embedded, the process's own memory): one `SET NX EX` per period."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    async def take(self, name: str, period: int, ttl: int) -> bool:
        key = f"periodic-lease:{name}:{period}"
        return await self._cache.set_if_absent(key, secrets.token_hex(8).encode(), ttl=ttl)


class DatabaseLeases:
    """One row per job; a take moves it to a later period, in one upsert."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def take(self, name: str, period: int, ttl: int) -> bool:
        async with transaction(self._sessionmaker) as session:
            dialect_insert = (
                postgresql_insert
                if session.get_bind().dialect.name == "postgresql"
                else sqlite_insert
            )
            table = JobLease.__table__
            statement = dialect_insert(JobLease).values(
                name=name, period=period, holder=secrets.token_hex(8)
            )
            statement = statement.on_conflict_do_update(
                index_elements=["name"],
                set_={"period": statement.excluded.period, "holder": statement.excluded.holder},
                where=table.c.period < statement.excluded.period,
            )
            result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0) == 1)


def create_leases(
    redis_url: str, cache: Cache, sessionmaker: async_sessionmaker[AsyncSession]
) -> Leases:
    """Redis leases when Redis is configured (shared by every process), else the
    database's."""
    return CacheLeases(cache) if redis_url else DatabaseLeases(sessionmaker)
