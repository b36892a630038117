"""One migration history for SQLite and PostgreSQL: up, down, up again, and the models
match what the migrations build."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from beatmachine.core import migrate
from beatmachine.core.db import create_engine
from beatmachine.models import Base, is_search_object
from tests.services import missing

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")

OUR_TABLES = {table.name for table in Base.metadata.sorted_tables}


def _admin_url() -> str:
    return (
        make_url(TEST_DATABASE_URL)
        .set(drivername="postgresql+asyncpg")
        .render_as_string(hide_password=False)
    )


async def _postgres_database() -> AsyncIterator[str]:
    if not TEST_DATABASE_URL:
        missing("TEST_DATABASE_URL is not set: no PostgreSQL to migrate")
    admin_url = _admin_url()
    name = f"bm_migrations_{secrets.token_hex(4)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        await admin.dispose()
        missing(f"PostgreSQL unreachable: {exc}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of its own."""
    if request.param == "sqlite":
        path = tmp_path / "migrations.db"
        assert not path.exists()
        yield f"sqlite+aiosqlite:///{path}"
        return
    async for url in _postgres_database():
        yield url


async def upgrade(url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, url, "head")


async def downgrade(url: str) -> None:
    await asyncio.to_thread(migrate.downgrade, url, "base")


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            return {name for name in names if not is_search_object(name)}
    finally:
        await engine.dispose()


async def model_diff(url: str) -> list[Any]:
    """What autogenerate would put in a new migration: nothing, when models and history agree."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "render_as_batch": connection.dialect.name == "sqlite",
                "include_object": lambda _obj, name, *_: not is_search_object(name),
            },
        )
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            diff: list[Any] = await connection.run_sync(compare)
            return diff
    finally:
        await engine.dispose()


async def test_upgrade_creates_every_table_of_the_models(fresh_database: str) -> None:
    await upgrade(fresh_database)
    assert await table_names(fresh_database) == OUR_TABLES | {"alembic_version"}


async def test_downgrade_to_base_removes_every_table_of_ours(fresh_database: str) -> None:
    await upgrade(fresh_database)
    await downgrade(fresh_database)
    assert await table_names(fresh_database) == {"alembic_version"}


async def test_upgrade_after_downgrade_rebuilds_the_schema(fresh_database: str) -> None:
    await upgrade(fresh_database)
    await downgrade(fresh_database)
    await upgrade(fresh_database)
    assert await table_names(fresh_database) == OUR_TABLES | {"alembic_version"}
    assert await model_diff(fresh_database) == []


async def test_models_match_the_migrations(fresh_database: str) -> None:
    await upgrade(fresh_database)
    assert await model_diff(fresh_database) == []


async def search_index_definition(url: str) -> str:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_patterns_search_vector'"
                )
            )
            return str(result.scalar_one())
    finally:
        await engine.dispose()


async def test_public_search_index_is_partial_and_its_downgrade_restores_the_full_one() -> None:
    async for url in _postgres_database():
        await upgrade(url)
        assert "WHERE (is_public AND (deleted_at IS NULL))" in await search_index_definition(url)

        await asyncio.to_thread(migrate.downgrade, url, "0003")

        assert "WHERE" not in await search_index_definition(url)


async def _execute(url: str, statement: str, **values: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), values)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_inline_avatars_move_out_of_the_profile_and_back_on_downgrade(
    fresh_database: str,
) -> None:
    url = fresh_database
    await asyncio.to_thread(migrate.upgrade, url, "0012")
    inline = "data:image/png;base64,iVBORw0KGgo="
    for user_id, avatar in (("usr_inline", inline), ("usr_link", "https://a.test/me.png")):
        await _execute(
            url,
            "INSERT INTO users (id, email, display_name, avatar, is_admin, created_at,"
            " updated_at) VALUES (:id, :email, 'Dancer', :avatar, false, :now, :now)",
            id=user_id,
            email=f"{user_id}@example.com",
            avatar=avatar,
            now=datetime(2026, 12, 1, 10, tzinfo=UTC),
        )

    await asyncio.to_thread(migrate.upgrade, url, "0013")

    rows = await _execute(url, "SELECT id, avatar, avatar_source FROM users ORDER BY id")
    assert [tuple(row) for row in rows] == [
        ("usr_inline", None, inline),
        ("usr_link", "https://a.test/me.png", None),
    ]

    await asyncio.to_thread(migrate.downgrade, url, "0012")

    rows = await _execute(url, "SELECT id, avatar FROM users ORDER BY id")
    assert [tuple(row) for row in rows] == [
        ("usr_inline", inline),
        ("usr_link", "https://a.test/me.png"),
    ]
