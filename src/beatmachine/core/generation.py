"""Cache generations: a name whose value changes whenever the data cached under it does.

Entries are filed under the current generation; starting a new one retires every entry at
once, in every process. Reading the generation is on the hot path of cached reads, so each
process keeps it in memory and Redis pushes new ones over pub/sub: no round trip per
request. While the subscription is down (start-up, a lost connection) the process reads
the generation from Redis on every call instead, so it never serves an old generation
because it missed a message. A connection that dies silently (a network that drops
packets without closing anything) is found by a PING after `HEARTBEAT_SECONDS` of
silence that gets no answer within `PONG_TIMEOUT_SECONDS`.

A generation is ``<epoch>:<sequence>``. The sequence comes from one atomic increment that
also publishes, so every process sees generations in the order they were made and can
refuse to step back (a process adopts its own new generation before its message comes
back). The epoch is random and lives in the same Redis hash as the sequence: if Redis
loses it (a restart without persistence, an eviction) the sequence starts again, but
under a new epoch, so an old value can never come back and revive entries filed under it.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

log = structlog.get_logger(__name__)

RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
CLOSE_WAIT_SECONDS = 1.0
# How often the follower looks up from waiting, and when silence calls for a PING.
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 2.0
PONG_TIMEOUT_SECONDS = 2.0

# Both scripts keep epoch and sequence in one hash, so they are lost (or evicted) together.
# A hash without a sequence gets a new epoch too. KEYS: the hash. ARGV: a fresh epoch.
_ENSURE = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch or redis.call('HEXISTS', KEYS[1], 'sequence') == 0 then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'sequence', 0)
end
"""
# ARGV[2]: the channel.
_ADVANCE = (
    _ENSURE
    + """
local generation = epoch .. ':' .. redis.call('HINCRBY', KEYS[1], 'sequence', 1)
redis.call('PUBLISH', ARGV[2], generation)
return generation
"""
)
_READ = (
    _ENSURE
    + """
return epoch .. ':' .. redis.call('HGET', KEYS[1], 'sequence')
"""
)


def _fresh_epoch() -> str:
    return secrets.token_hex(8)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse(generation: str) -> tuple[str, int] | None:
    epoch, _, sequence = generation.partition(":")
    if not epoch or not sequence.isdigit():
        return None
    return epoch, int(sequence)


def _is_newer(candidate: str, current: str | None) -> bool:
    """Whether `candidate` may replace `current`: a later sequence of the same epoch, or
    any generation of another epoch (Redis started over). Never a malformed value."""
    parsed = _parse(candidate)
    if parsed is None:
        return False
    if current is None:
        return True
    current_parsed = _parse(current)
    if current_parsed is None or parsed[0] != current_parsed[0]:
        return True
    return parsed[1] > current_parsed[1]


class Generation(Protocol):
    async def current(self) -> str: ...
    async def advance(self) -> str: ...


class LocalGeneration:
    """The generation of a single process (no Redis): a counter under a random epoch."""

    def __init__(self) -> None:
        self._epoch = _fresh_epoch()
        self._sequence = 0

    async def current(self) -> str:
        return f"{self._epoch}:{self._sequence}"

    async def advance(self) -> str:
        self._sequence += 1
        return await self.current()


class SharedGeneration:
    """A generation shared by every process on one Redis, followed over pub/sub."""

    def __init__(self, redis: Redis, subscriber: Redis, prefix: str, name: str) -> None:
        self._redis = redis
        self._subscriber = subscriber
        self.key = f"{prefix}generation:{name}"
        self.channel = self.key  # keys and channels are separate namespaces in Redis
        self._value: str | None = None
        self._live = False
        self._follower: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._closed = False

    @property
    def live(self) -> bool:
        """Whether the in-memory value is kept current by the subscription."""
        return self._live

    async def current(self) -> str:
        if self._live and self._value is not None:
            return self._value
        self._start_following()
        return await self._read()

    async def advance(self) -> str:
        generation = _text(
            await self._redis.eval(_ADVANCE, 1, self.key, _fresh_epoch(), self.channel)
        )
        # This process serves its own change at once, before the message comes back.
        self._adopt(generation)
        return generation

    async def close(self) -> None:
        self._closed = True
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            done, _ = await asyncio.wait({follower}, timeout=CLOSE_WAIT_SECONDS)
            if not done and self._pubsub is not None and self._pubsub.connection is not None:
                # A read blocked in the Redis client may not give way to the cancellation;
                # closing its connection ends the read, and the loop sees it is closed.
                await self._pubsub.connection.disconnect(nowait=True)
                await asyncio.wait({follower}, timeout=CLOSE_WAIT_SECONDS)
        self._live = False

    async def _read(self, *, settled: bool = False) -> str:
        """The generation in Redis. A read while not following adopts only a later
        sequence of the epoch this process knows: two reads in flight while Redis starts
        a new epoch could otherwise answer out of order. The follower's read right after
        subscribing is `settled` and may bring a new epoch."""
        generation = _text(await self._redis.eval(_READ, 1, self.key, _fresh_epoch()))
        self._adopt(generation, any_epoch=settled)
        return generation

    def _adopt(self, generation: str, *, any_epoch: bool = True) -> None:
        parsed, current = _parse(generation), _parse(self._value or "")
        if parsed is None:
            return
        if current is not None and parsed[0] != current[0] and not any_epoch:
            return
        if _is_newer(generation, self._value):
            self._value = generation

    def _start_following(self) -> None:
        if not self._closed and (self._follower is None or self._follower.done()):
            self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        failures = 0
        while not self._closed:
            try:
                async with self._subscriber.pubsub() as pubsub:
                    self._pubsub = pubsub
                    await pubsub.subscribe(self.channel)
                    # Subscribed (confirmed by Redis) first, then read: nothing published
                    # in between is missed. The read goes over another connection, so
                    # without the confirmation it could overtake the SUBSCRIBE.
                    await _confirmed(pubsub)
                    await self._read(settled=True)
                    self._live = True
                    failures = 0
                    await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Whatever failed, read through Redis until subscribed again.
                self._live = False
                if self._closed:
                    return
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning(
                    "generation.subscription_lost",
                    channel=self.channel,
                    error=f"{type(exc).__name__}: {exc}",
                )
                await asyncio.sleep(delay)
            finally:
                self._live = False
                self._pubsub = None

    async def _listen(self, pubsub: PubSub) -> None:
        """Adopt every generation published, until the connection fails or stays silent
        through a PING."""
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        ping_sent: float | None = None
        while True:
            message = await pubsub.get_message(timeout=POLL_SECONDS)
            now = loop.time()
            if message is not None:
                last_heard, ping_sent = now, None
                if message.get("type") == "message":
                    self._adopt(_text(message["data"]))
            elif ping_sent is not None:
                if now - ping_sent > PONG_TIMEOUT_SECONDS:
                    raise ConnectionError("the subscription did not answer a PING")
            elif now - last_heard > HEARTBEAT_SECONDS:
                await pubsub.ping()
                ping_sent = now


async def _confirmed(pubsub: PubSub) -> None:
    """Wait for Redis to confirm the subscription."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PONG_TIMEOUT_SECONDS
    while loop.time() < deadline:
        message = await pubsub.get_message(timeout=POLL_SECONDS)
        if message is not None and message.get("type") == "subscribe":
            return
    raise ConnectionError("the subscription was not confirmed")
