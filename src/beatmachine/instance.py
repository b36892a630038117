"""The shared services of one process (API, worker or CLI), with every domain attached."""

from __future__ import annotations

from beatmachine import domains
from beatmachine.core import outbox
from beatmachine.core.cache import create_cache
from beatmachine.core.config import Settings
from beatmachine.core.db import create_engine, create_sessionmaker
from beatmachine.core.events import EventBus
from beatmachine.core.jobs import JobQueue, Scheduler, create_broker
from beatmachine.core.jobs.leases import create_leases
from beatmachine.core.mail import Mailer
from beatmachine.core.metrics import Metrics
from beatmachine.core.ratelimit import RateLimiter
from beatmachine.core.security import PasswordHasherService
from beatmachine.core.state import AppState
from beatmachine.core.storage import create_storage


def build_state(settings: Settings) -> AppState:
    """Create (without I/O on the network) every shared service of one app instance, with
    every domain attached (API, worker and CLI processes alike)."""
    metrics = Metrics()
    engine = create_engine(
        settings.effective_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        echo=settings.db_echo,
    )
    sessionmaker = create_sessionmaker(engine)
    relay = outbox.Relay(sessionmaker, metrics)
    # Every session wakes this process's relay after a commit that wrote to the outbox.
    sessionmaker.configure(info={outbox.WAKE_RELAY: relay.wake})
    cache = create_cache(settings.redis_url, settings.redis_key_prefix)
    jobs = JobQueue(create_broker(settings, sessionmaker), sessionmaker, relay, metrics, settings)
    scheduler = Scheduler(create_leases(settings.redis_url, cache, sessionmaker), jobs)
    state = AppState(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        cache=cache,
        limiter=RateLimiter(
            settings.redis_url, settings.redis_key_prefix, enabled=settings.rate_limit_enabled
        ),
        mailer=Mailer(
            settings.smtp_url, settings.mail_from, settings.effective_outbox_dir, metrics, jobs
        ),
        metrics=metrics,
        passwords=PasswordHasherService(
            time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost
        ),
        jobs=jobs,
        relay=relay,
        scheduler=scheduler,
        events=EventBus(
            sessionmaker, jobs, relay, scheduler, retention_seconds=settings.event_retention
        ),
        storage=create_storage(settings),
        jwt_secret=settings.signing_secret(),
    )
    domains.setup(state)
    return state
