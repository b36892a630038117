"""The shared services of one app instance, and the dependencies that hand them out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from beatmachine.core.cache import Cache, MemoryCache
from beatmachine.core.config import Settings
from beatmachine.core.events import EventBus
from beatmachine.core.jobs import JobQueue, Scheduler
from beatmachine.core.mail import Mailer
from beatmachine.core.metrics import Metrics
from beatmachine.core.outbox import Relay
from beatmachine.core.ratelimit import RateLimiter
from beatmachine.core.security import PasswordHasherService
from beatmachine.core.storage import Storage

# A count shown on a profile, computed by the domain that owns it: (session, user id) ->
# {"patterns_created": 3, ...}. Domains register theirs in their `setup`.
ProfileCounts = Callable[[AsyncSession, str], Awaitable[dict[str, int]]]
# Display names of accounts by id, for domains that come before users and so cannot ask
# it themselves (a machine version names its author).
NameLookup = Callable[[AsyncSession, set[str]], Awaitable[dict[str, str]]]
# Whether one account follows another, from the social domain (which comes after users):
# (session, viewer id, user id) -> bool. Until a domain provides it, nobody follows anyone.
FollowCheck = Callable[[AsyncSession, str, str], Awaitable[bool]]
Hook = Callable[[], Awaitable[None]]
# Work a domain does inside the transaction that purges accounts, before their rows go
# (the counters of what they leave behind on other people's work): (session, user ids).
PurgeHook = Callable[[AsyncSession, list[str]], Awaitable[None]]


async def _no_names(_session: AsyncSession, _ids: set[str]) -> dict[str, str]:
    return {}


async def _no_follows(_session: AsyncSession, _viewer_id: str, _user_id: str) -> bool:
    return False


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
    jobs: JobQueue
    relay: Relay
    scheduler: Scheduler
    events: EventBus
    storage: Storage
    jwt_secret: str
    # Per-process memo for entries whose key names their content (never stale).
    memo: MemoryCache = field(default_factory=lambda: MemoryCache(max_entries=256))
    # Services that domains attach (e.g. the OAuth verifier), and what closes them.
    extensions: dict[str, Any] = field(default_factory=dict)
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)
    profile_counts: list[ProfileCounts] = field(default_factory=list)
    before_account_purge: list[PurgeHook] = field(default_factory=list)
    display_names: NameLookup = _no_names
    is_following: FollowCheck = _no_follows

    async def start(self, *, worker: bool, scheduler: bool) -> None:
        """Run the domains' start-up work, then the background work of this process: the
        outbox relay always, a job worker and the periodic jobs when asked."""
        for start in self.on_startup:
            await start()
        await self.jobs.start()
        self.relay.start()
        if worker:
            self.jobs.start_worker()
        if scheduler:
            self.scheduler.start()

    async def aclose(self) -> None:
        """Stop background work (running jobs get a grace period; what is left runs again
        elsewhere), then close what the domains attached and every connection. The one
        shutdown sequence of API, worker and CLI processes."""
        await self.scheduler.stop()
        await self.jobs.stop_worker()
        await self.relay.stop()
        await self.jobs.aclose()
        for close in reversed(self.on_shutdown):
            await close()
        await self.storage.aclose()
        await self.cache.close()
        await self.limiter.aclose()
        await self.engine.dispose()


async def get_state(request: Request) -> AppState:
    # async: FastAPI would run a plain function in a worker thread on every request.
    state: AppState = request.app.state.services
    return state


StateDep = Annotated[AppState, Depends(get_state)]
