"""Back ends for the suite.

With no service variables the suite runs embedded (SQLite, in-process cache and
limiter). With `TEST_DATABASE_URL` (PostgreSQL) and `TEST_REDIS_URL` set, every
database test runs a second time against PostgreSQL + Redis. Under
`BM_REQUIRE_SERVICES=1` a missing or unreachable service fails the run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from beatmachine.app import create_app
from beatmachine.core import migrate
from beatmachine.core.config import Settings
from beatmachine.core.state import AppState
from beatmachine.models import Base
from tests.factories import Account, register, register_admin
from tests.processes import processes  # noqa: F401 (a fixture for every test module)

# Registered here, once for every package: a fixture imported into two test modules
# would be two fixtures, and this session-scoped server (one per worker, started on
# first use) would start twice.
from tests.seaweedfs import seaweedfs_fixture  # noqa: F401
from tests.services import REQUIRE_SERVICES, missing

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")

BACKENDS = ["sqlite"]
if TEST_DATABASE_URL or REQUIRE_SERVICES:
    BACKENDS.append("postgres")


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_SERVICES and not (TEST_DATABASE_URL and TEST_REDIS_URL):
        raise pytest.UsageError(
            "BM_REQUIRE_SERVICES=1 needs TEST_DATABASE_URL and TEST_REDIS_URL to be set"
        )


def asyncpg_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str
    redis_url: str
    redis_prefix: str


async def _create_postgres_database() -> tuple[str, str]:
    admin_url = asyncpg_url(TEST_DATABASE_URL)
    name = f"bm_test_{secrets.token_hex(4)}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return admin_url, make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


async def _check_redis(url: str) -> None:
    redis = Redis.from_url(url)
    try:
        await redis.ping()
    finally:
        await redis.aclose()


async def delete_redis_prefix(url: str, prefix: str) -> None:
    redis = Redis.from_url(url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture(scope="session", params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    """A migrated database (and, for PostgreSQL, a Redis namespace) for the whole run."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "test.db"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(migrate.upgrade, url)
        yield Backend("sqlite", url, "", "")
        return
    try:
        admin_url, url = await _create_postgres_database()
        await _check_redis(TEST_REDIS_URL)
    except Exception as exc:
        missing(f"PostgreSQL/Redis unreachable: {exc}")
    prefix = f"bmtest:{secrets.token_hex(4)}:"
    await asyncio.to_thread(migrate.upgrade, url)
    try:
        yield Backend("postgres", url, TEST_REDIS_URL, prefix)
    finally:
        await delete_redis_prefix(TEST_REDIS_URL, prefix)
        await _drop_postgres_database(admin_url, url)


def make_settings(backend: Backend, var_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url,
        "REDIS_KEY_PREFIX": backend.redis_prefix or "bm:",
        "VAR_DIR": var_dir,
        "JWT_SECRET": "test-secret-" + "x" * 40,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 8192,
        "LOG_JSON": False,
        "LOG_LEVEL": "WARNING",
        "RUN_SCHEDULER": False,
        "INSTALL_DEFAULT_MACHINES": False,
        "APP_URL": "http://localhost:3009",
        "METRICS_TOKEN": "test-metrics-token",
        # E-mails of notifications at once: a delayed job would keep `settle` waiting.
        "NOTIFICATION_EMAIL_DELAY": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change the app's settings."""
    return {}


@pytest.fixture
def settings(backend: Backend, tmp_path: Path, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(backend, tmp_path / "var", **settings_overrides)


async def _clean(backend: Backend, app_state: AppState) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with app_state.engine.begin() as connection:
        if backend.name == "postgres":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (names from our metadata)
    if backend.redis_url:
        await delete_redis_prefix(backend.redis_url, backend.redis_prefix)


@pytest.fixture
async def app(settings: Settings, backend: Backend) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    state: AppState = application.state.services
    try:
        # Start-up installs machines; allow for a loaded machine.
        async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
            yield application
    finally:
        # After shutdown: no job or relay still writes while the tables are emptied.
        await _clean(backend, state)
        await state.engine.dispose()


AppMaker = Callable[..., FastAPI]


@pytest.fixture
async def make_app(backend: Backend, tmp_path: Path) -> AsyncIterator[AppMaker]:
    """Make apps of one's own (not started) on the test's back ends, with settings
    overrides; their tables and Redis prefix are emptied afterwards."""
    made: list[FastAPI] = []

    def make(**overrides: Any) -> FastAPI:
        application = create_app(make_settings(backend, tmp_path / "var", **overrides))
        made.append(application)
        return application

    try:
        yield make
    finally:
        if made:
            await _clean(backend, made[0].state.services)
        for application in made:
            await application.state.services.engine.dispose()


@pytest.fixture
def state(app: FastAPI) -> AppState:
    services: AppState = app.state.services
    return services


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def db(settings: Settings, app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A separate session to look at (or arrange) what the requests stored.

    Its engine uses the driver's own transaction handling, so on SQLite a read here
    never holds the write lock that the app's requests need.
    """
    engine = create_async_engine(settings.effective_database_url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            yield session
    finally:
        await engine.dispose()


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> Account:
    """An administrator (use with `ADMIN_OVERRIDES` in the module's settings)."""
    return await register_admin(client)


# The accounts that tests of several domains share, by the part they play.
@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    """The account whose work (patterns, profile) a test is about."""
    return await register(client, display_name="Owner")


@pytest.fixture
async def other(client: httpx.AsyncClient) -> Account:
    """Another signed-in account, with work of its own."""
    return await register(client, display_name="Other")


@pytest.fixture
async def stranger(client: httpx.AsyncClient) -> Account:
    """A signed-in account that has nothing to do with the owner's work."""
    return await register(client, display_name="Stranger")


@pytest.fixture
async def fan(client: httpx.AsyncClient) -> Account:
    """A signed-in account that likes, plays, comments on and follows the owner's work."""
    return await register(client, display_name="Fan")


@pytest.fixture
def outbox(settings: Settings) -> Iterator[Path]:
    yield settings.effective_outbox_dir
