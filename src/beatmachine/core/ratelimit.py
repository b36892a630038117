"""Rate limiting on top of `limits`: Redis storage when configured, so that every API
process shares one count, in-process memory otherwise."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import BlockingConnectionPool

from beatmachine.core.cache import REDIS_MAX_CONNECTIONS, REDIS_POOL_TIMEOUT
from beatmachine.core.errors import RateLimitExceeded


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_time: float  # Unix seconds at which the window ends

    @property
    def reset_at(self) -> int:
        return math.ceil(self.reset_time)

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_time - time.time()))

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


class RateLimiter:
    """Counts hits per (name, key) in fixed windows."""

    def __init__(self, redis_url: str, prefix: str, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._storage: Storage
        self._pool: BlockingConnectionPool | None = None
        if redis_url:
            uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
            # A blocking pool: requests beyond its size wait instead of failing.
            self._pool = BlockingConnectionPool.from_url(
                uri.removeprefix("async+"),
                max_connections=REDIS_MAX_CONNECTIONS,
                timeout=REDIS_POOL_TIMEOUT,
            )
            self._storage = RedisStorage(
                uri,
                implementation="redispy",
                key_prefix=prefix + "rl",
                connection_pool=self._pool,  # type: ignore[arg-type]  # limits types options narrowly
            )
        else:
            self._storage = MemoryStorage()
        self._limiter = FixedWindowRateLimiter(self._storage)

    @staticmethod
    def _item(limit: int, window: int, name: str) -> RateLimitItem:
        return RateLimitItemPerSecond(limit, window, namespace=name)

    async def hit(self, name: str, key: str, *, limit: int, window: int, cost: int = 1) -> Decision:
        """Count one request; `allowed` is False when it goes over the limit."""
        item = self._item(limit, window, name)
        allowed = await self._limiter.hit(item, key, cost=cost)
        stats = await self._limiter.get_window_stats(item, key)
        return Decision(allowed, limit, max(0, stats.remaining), stats.reset_time)

    async def enforce(self, name: str, key: str, *, limit: int, window: int, message: str) -> None:
        """Count one action of `key` against a limit of its own (creations per user per
        hour, say); past it, `RateLimitExceeded` with `message` and `Retry-After`. Does
        nothing while limits are switched off."""
        if not self.enabled:
            return
        decision = await self.hit(name, key, limit=limit, window=window)
        if not decision.allowed:
            raise RateLimitExceeded(message, headers={"Retry-After": str(decision.retry_after)})

    async def peek(self, name: str, key: str, *, limit: int, window: int) -> Decision:
        """The state of a limit without counting a hit."""
        item = self._item(limit, window, name)
        allowed = await self._limiter.test(item, key)
        stats = await self._limiter.get_window_stats(item, key)
        return Decision(allowed, limit, max(0, stats.remaining), stats.reset_time)

    async def clear(self, name: str, key: str, *, limit: int, window: int) -> None:
        await self._limiter.clear(self._item(limit, window, name), key)

    async def ping(self) -> bool:
        return bool(await self._storage.check())

    async def reset_all(self) -> None:
        await self._storage.reset()

    async def aclose(self) -> None:
        """Close the Redis connections, or stop the in-memory storage's expiry timer."""
        if self._pool is not None:
            await self._pool.disconnect()
        timer = getattr(self._storage, "timer", None)
        if isinstance(timer, asyncio.Task) and not timer.done():
            timer.cancel()
