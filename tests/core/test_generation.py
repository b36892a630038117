"""Cache generations: in one process, and shared by processes on one Redis, where each
process follows new generations over pub/sub and falls back to reading Redis while its
subscription is down."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from beatmachine.core import generation as generation_module
from beatmachine.core.cache import SUBSCRIBER_NAME, MemoryCache, RedisCache, create_cache
from beatmachine.core.generation import SharedGeneration
from tests.conftest import TEST_REDIS_URL, delete_redis_prefix
from tests.services import missing
from tests.tcp_proxy import FreezingProxy
from tests.waiting import eventually


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    if not TEST_REDIS_URL:
        missing("shared generations need Redis (set TEST_REDIS_URL)")
    value = f"bmtest:{secrets.token_hex(4)}:"
    yield value
    await delete_redis_prefix(TEST_REDIS_URL, value)


@pytest.fixture
async def processes(prefix: str) -> AsyncIterator[Callable[[], RedisCache]]:
    """Makes the cache of one more API process on the shared Redis; closes them all."""
    made: list[RedisCache] = []

    def make() -> RedisCache:
        cache = create_cache(TEST_REDIS_URL, prefix)
        assert isinstance(cache, RedisCache)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()


@pytest.fixture
def process_a(processes: Callable[[], RedisCache]) -> RedisCache:
    return processes()


@pytest.fixture
def process_b(processes: Callable[[], RedisCache]) -> RedisCache:
    return processes()


async def following(cache: RedisCache) -> SharedGeneration:
    """The process's generation once its subscription is up."""
    generation = cache.generation("machines")
    assert isinstance(generation, SharedGeneration)
    await generation.current()
    await eventually(lambda: _true(generation.live))
    return generation


async def _true(value: bool) -> bool:
    return value


async def kill_subscriptions(prefix: str) -> int:
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        clients = await redis.client_list()
        ids = [c["id"] for c in clients if c.get("name") == f"{SUBSCRIBER_NAME}:{prefix}"]
        for client_id in ids:
            await redis.client_kill_filter(_id=client_id)
        return len(ids)
    finally:
        await redis.aclose()


async def test_local_generation_changes_on_advance() -> None:
    generation = MemoryCache().generation("machines")
    before = await generation.current()

    after = await generation.advance()

    assert after != before
    assert await generation.current() == after


async def test_local_generations_of_two_caches_never_coincide() -> None:
    first = await MemoryCache().generation("machines").current()
    second = await MemoryCache().generation("machines").current()

    assert first != second


async def test_processes_on_one_redis_start_on_the_same_generation(
    process_a: RedisCache, process_b: RedisCache
) -> None:
    a = await process_a.generation("machines").current()
    b = await process_b.generation("machines").current()

    assert a == b


async def test_advancing_process_sees_its_new_generation_at_once(
    process_a: RedisCache, process_b: RedisCache
) -> None:
    generation = await following(process_a)
    before = await generation.current()

    advanced = await generation.advance()

    assert advanced != before
    assert await generation.current() == advanced


async def test_other_process_follows_a_new_generation_without_reading_redis(
    process_a: RedisCache, process_b: RedisCache
) -> None:
    follower = await following(process_b)
    advanced = await process_a.generation("machines").advance()

    await eventually(lambda: _equals(follower.current(), advanced))
    assert follower.live


async def _equals(value: Awaitable[str], expected: str) -> bool:
    return await value == expected


async def test_other_process_ends_on_the_last_of_quick_successive_advances(
    process_a: RedisCache, process_b: RedisCache
) -> None:
    follower = await following(process_b)
    advancing = process_a.generation("machines")
    generations = [await advancing.advance() for _ in range(20)]

    await eventually(lambda: _equals(follower.current(), generations[-1]))
    await asyncio.sleep(0.1)  # and stays there: nothing older arrives later
    assert await follower.current() == generations[-1]


async def test_generation_never_steps_back_to_an_older_one(
    process_a: RedisCache, process_b: RedisCache
) -> None:
    mine = await following(process_a)
    other = process_b.generation("machines")
    await mine.advance()
    newest = await other.advance()
    await eventually(lambda: _equals(mine.current(), newest))

    # The message of the older advance, arriving late, is not adopted.
    older = newest.rpartition(":")[0] + ":1"
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        await redis.publish(mine.channel, older)
    finally:
        await redis.aclose()
    await asyncio.sleep(0.1)

    assert await mine.current() == newest


async def test_a_lost_subscription_reads_redis_and_misses_no_generation(
    prefix: str, process_a: RedisCache, process_b: RedisCache
) -> None:
    follower = await following(process_b)

    assert await kill_subscriptions(prefix) >= 1
    advanced = await process_a.generation("machines").advance()

    await eventually(lambda: _equals(follower.current(), advanced))


async def test_a_lost_subscription_is_restored(
    prefix: str, process_a: RedisCache, process_b: RedisCache
) -> None:
    follower = await following(process_b)
    await kill_subscriptions(prefix)
    await eventually(lambda: _true(not follower.live))

    await eventually(lambda: _true(follower.live))
    advanced = await process_a.generation("machines").advance()
    await eventually(lambda: _equals(follower.current(), advanced))


async def test_redis_losing_its_data_never_brings_back_an_old_generation(
    prefix: str, process_a: RedisCache
) -> None:
    generation = process_a.generation("machines")
    seen = {await generation.current(), await generation.advance()}

    await delete_redis_prefix(TEST_REDIS_URL, prefix)  # as a restart without persistence
    fresh = await process_b_reading(prefix)

    assert fresh not in seen


async def process_b_reading(prefix: str) -> str:
    cache = create_cache(TEST_REDIS_URL, prefix)
    try:
        return await cache.generation("machines").current()
    finally:
        await cache.close()


async def test_generations_of_different_names_are_independent(
    process_a: RedisCache,
) -> None:
    machines = process_a.generation("machines")
    other = process_a.generation("other")
    before = await other.current()

    await machines.advance()

    assert await other.current() == before


@pytest.fixture
def quick_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generation_module, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(generation_module, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(generation_module, "PONG_TIMEOUT_SECONDS", 0.5)


async def subscriber_ids(prefix: str) -> list[int]:
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        clients = await redis.client_list()
        return [int(c["id"]) for c in clients if c.get("name") == f"{SUBSCRIBER_NAME}:{prefix}"]
    finally:
        await redis.aclose()


async def test_a_quiet_subscription_answers_its_pings_and_stays(
    prefix: str, process_b: RedisCache, quick_heartbeat: None
) -> None:
    follower = await following(process_b)
    before = await subscriber_ids(prefix)

    await asyncio.sleep(2.0)  # ten heartbeats without a message

    assert follower.live
    assert await subscriber_ids(prefix) == before


async def test_a_silently_dead_subscription_is_found_and_replaced(
    prefix: str, process_a: RedisCache, quick_heartbeat: None
) -> None:
    url = urlsplit(TEST_REDIS_URL)
    async with FreezingProxy(url.hostname or "127.0.0.1", url.port or 6379) as proxy:
        through_proxy = f"redis://127.0.0.1:{proxy.port}{url.path}"
        process_b = RedisCache(
            Redis.from_url(TEST_REDIS_URL),
            Redis.from_url(through_proxy, client_name=f"{SUBSCRIBER_NAME}:{prefix}"),
            prefix,
        )
        try:
            follower = await following(process_b)
            proxy.freeze()  # the subscription stays open but hears nothing more

            advanced = await process_a.generation("machines").advance()

            await eventually(lambda: _equals(follower.current(), advanced))
        finally:
            await process_b.close()


async def test_a_generation_made_while_subscribing_is_not_missed(
    prefix: str, process_a: RedisCache
) -> None:
    url = urlsplit(TEST_REDIS_URL)
    # The subscription reaches Redis late; reads (another connection) do not.
    async with FreezingProxy(
        url.hostname or "127.0.0.1", url.port or 6379, send_delay=0.3
    ) as proxy:
        process_b = RedisCache(
            Redis.from_url(TEST_REDIS_URL),
            Redis.from_url(f"redis://127.0.0.1:{proxy.port}{url.path}"),
            prefix,
        )
        try:
            follower = await following(process_b)
            # Live means subscribed: a generation made from now on reaches it.
            advanced = await process_a.generation("machines").advance()

            await eventually(lambda: _equals(follower.current(), advanced))
        finally:
            await process_b.close()


async def test_malformed_messages_are_ignored(process_a: RedisCache, process_b: RedisCache) -> None:
    follower = await following(process_b)
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        for junk in ("", "garbage", "epoch:", ":7", "epoch:-1", "epoch:x"):
            await redis.publish(follower.channel, junk)
    finally:
        await redis.aclose()

    advanced = await process_a.generation("machines").advance()

    await eventually(lambda: _equals(follower.current(), advanced))
    assert follower.live


async def test_a_lost_generation_key_starts_a_new_epoch_every_process_adopts(
    process_a: RedisCache, process_b: RedisCache
) -> None:
    follower = await following(process_b)
    advancing = process_a.generation("machines")
    for _ in range(3):
        await advancing.advance()
    assert isinstance(advancing, SharedGeneration)
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        await redis.hdel(advancing.key, "sequence")  # as an eviction or a stray command
    finally:
        await redis.aclose()

    advanced = await advancing.advance()

    assert advanced.partition(":")[2] == "1"
    await eventually(lambda: _equals(follower.current(), advanced))
