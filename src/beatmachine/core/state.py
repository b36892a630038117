"""The shared services of one app instance, and the dependencies that hand them out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from beatmachine.core.cache import Cache, MemoryCache
from beatmachine.core.config import Settings
from beatmachine.core.jobs import Scheduler
from beatmachine.core.mail import Mailer
from beatmachine.core.metrics import Metrics
from beatmachine.core.ratelimit import RateLimiter
from beatmachine.core.security import PasswordHasherService


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: Cache
    limiter: RateLimiter
    mailer: Mailer
    metrics: Metrics
    passwords: PasswordHasherService
    scheduler: Scheduler
    jwt_secret: str
    # Per-process memo for entries whose key names their content (never stale).
    memo: MemoryCache = field(default_factory=lambda: MemoryCache(max_entries=256))
    # Services that domains attach (e.g. the OAuth verifier), and what closes them.
    extensions: dict[str, Any] = field(default_factory=dict)
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def get_state(request: Request) -> AppState:
    # async: FastAPI would run a plain function in a worker thread on every request.
    state: AppState = request.app.state.services
    return state


StateDep = Annotated[AppState, Depends(get_state)]
