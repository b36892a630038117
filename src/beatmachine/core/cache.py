"""A small key-value cache: Redis when `REDIS_URL` is set, in-process otherwise.

Both implementations share one interface so that domains never know which one
runs. Keys are namespaced with `REDIS_KEY_PREFIX`.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import BlockingConnectionPool, Redis

from beatmachine.core.generation import Generation, LocalGeneration, SharedGeneration

# More requests in flight than connections wait for one (a plain pool raises
# MaxConnectionsError, a 500, past its size).
REDIS_MAX_CONNECTIONS = 100
REDIS_POOL_TIMEOUT = 10
SUBSCRIBER_NAME = "beatmachine-generations"


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None: ...
    async def set_if_absent(self, key: str, value: bytes, ttl: int) -> bool:
        """Set `key` only if it does not exist, in one atomic step; True when it was set."""
        ...

    async def delete(self, *keys: str) -> None: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...
    def generation(self, name: str) -> Generation:
        """The cache generation `name` (see core.generation), the same in every process
        that shares this cache."""
        ...


class MemoryCache:
    """In-process cache for the embedded set-up (one process)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._max_entries = max_entries
        self._generations: dict[str, LocalGeneration] = {}

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        if len(self._data) >= self._max_entries:
            self._evict()
        self._data[key] = (value, time.monotonic() + ttl if ttl else None)

    async def set_if_absent(self, key: str, value: bytes, ttl: int) -> bool:
        # Neither call suspends, so nothing runs between the check and the set.
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl=ttl)
        return True

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()

    def generation(self, name: str) -> Generation:
        return self._generations.setdefault(name, LocalGeneration())

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[key]
        while len(self._data) >= self._max_entries:
            self._data.pop(next(iter(self._data)))


class RedisCache:
    """Cache shared by every API process through one Redis."""

    def __init__(self, redis: Redis, subscriber: Redis, prefix: str) -> None:
        self._redis = redis
        # Subscriptions hold their connection for good: not one of the pool's.
        self._subscriber = subscriber
        self._prefix = prefix
        self._generations: dict[str, SharedGeneration] = {}

    async def get(self, key: str) -> bytes | None:
        value: bytes | str | None = await self._redis.get(self._prefix + key)
        if value is None or isinstance(value, bytes):
            return value
        return value.encode()

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        await self._redis.set(self._prefix + key, value, ex=ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(await self._redis.set(self._prefix + key, value, ex=ttl, nx=True))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._redis.delete(*(self._prefix + key for key in keys))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        for generation in self._generations.values():
            await generation.close()
        await self._subscriber.aclose()
        await self._redis.aclose()

    def generation(self, name: str) -> Generation:
        if name not in self._generations:
            self._generations[name] = SharedGeneration(
                self._redis, self._subscriber, self._prefix, name
            )
        return self._generations[name]


def create_cache(redis_url: str, prefix: str) -> Cache:
    if not redis_url:
        return MemoryCache()
    pool = BlockingConnectionPool.from_url(
        redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_POOL_TIMEOUT,
        socket_timeout=5,
        health_check_interval=30,
    )
    # No read timeout: a subscription waits for messages as long as it takes; the
    # follower's own PING finds a connection that died silently (core.generation).
    subscriber = Redis.from_url(
        redis_url,
        socket_keepalive=True,
        socket_connect_timeout=5,
        client_name=f"{SUBSCRIBER_NAME}:{prefix}",
    )
    return RedisCache(Redis.from_pool(pool), subscriber, prefix)
