"""The production job queue: taskiq-redis's Redis Streams broker, with acknowledged
delivery made to hold in the cases it leaves open.

- A job whose worker died is delivered again: its message stays pending in the consumer
  group until acknowledged, and every worker claims messages that stayed idle longer
  than `JOB_REDELIVERY_TIMEOUT` (XAUTOCLAIM) on every turn of its loop, not only when new
  messages arrived. A worker renews the messages it holds (XCLAIM … JUSTID) while they
  run, so a long job is not taken from a live worker.
- Delayed jobs (retries with backoff) wait in a sorted set and are moved to the stream
  by one Lua script when due, so a move is never done twice or lost half-way.
- The consumer group reads from the start of the stream, so jobs queued before the
  first worker ever started are not skipped; acknowledged messages are deleted, so the
  stream holds exactly the jobs not yet done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage
from taskiq_redis import RedisStreamBroker

from beatmachine.core.jobs.labels import being_cancelled, delay_of

log = structlog.get_logger(__name__)

# KEYS[1] delayed set, KEYS[2] stream; ARGV[1] now, ARGV[2] how many at most.
_PROMOTE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, message in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'data', message)
  redis.call('ZREM', KEYS[1], message)
end
return #due
"""
PROMOTE_BATCH = 500
MIN_PAUSE_SECONDS = 0.5
MAX_PAUSE_SECONDS = 10.0
# Short: delayed jobs (retries) are moved to the stream between reads.
READ_BLOCK_MS = 250


class StreamBroker(RedisStreamBroker):
    """See the module's docstring."""

    def __init__(
        self,
        url: str,
        *,
        queue_name: str,
        redelivery_timeout: float,
        read_count: int,
        max_connections: int,
    ) -> None:
        super().__init__(
            url,
            queue_name=queue_name,
            consumer_group_name=f"{queue_name}:workers",
            consumer_name=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            consumer_id="0",
            xread_block=READ_BLOCK_MS,
            idle_timeout=int(redelivery_timeout * 1000),
            unacknowledged_batch_size=read_count,
            xread_count=read_count,
            max_connection_pool_size=max_connections,
            socket_connect_timeout=5,
        )
        self.delayed_key = f"{queue_name}:delayed"
        self._heartbeat_seconds = max(0.2, redelivery_timeout / 4)
        self._held: set[str] = set()
        self._listening = False
        self._redis = Redis(connection_pool=self.connection_pool)
        self._promote = self._redis.register_script(_PROMOTE_DUE)

    async def kick(self, message: BrokerMessage) -> None:
        """Queue a job: at once on the stream, or in the delayed set until it is due."""
        await self.kick_many([message])

    async def kick_many(self, messages: Sequence[BrokerMessage]) -> None:
        """Queue several jobs in one round trip."""
        if not messages:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for message in messages:
                delay = delay_of(message.labels)
                if delay > 0:
                    pipe.zadd(self.delayed_key, {message.message: time.time() + delay})
                else:
                    pipe.xadd(self.queue_name, {b"data": message.message})
            await pipe.execute()

    async def startup(self) -> None:
        """Declare the consumer group; with Redis down, `listen` does it once Redis is back
        (a process must start while Redis is away: `/readyz` reports it)."""
        await AsyncBroker.startup(self)
        try:
            await self._declare_consumer_group()
        except RedisError as exc:
            log.warning("job_stream_unreachable", error=type(exc).__name__)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Yield new messages, then due delayed ones and those a dead worker left behind.
        Redis going away, or losing the stream, pauses the loop instead of ending it."""
        heartbeat = asyncio.create_task(self._renew_held(), name="job-stream-heartbeat")
        pause = 0.0
        self._listening = True
        try:
            while self._listening:
                if pause:
                    await asyncio.sleep(pause)
                try:
                    fetched = await self._read_turn()
                    pause = 0.0
                except (RedisError, OSError) as exc:
                    # A cancel can surface as a Redis error (a pool wait cut short): the
                    # worker is stopping, so stop rather than wait for Redis again.
                    if being_cancelled():
                        raise asyncio.CancelledError from exc
                    if not isinstance(exc, ResponseError):
                        log.warning("job_stream_unreachable", error=type(exc).__name__)
                        pause = min(MAX_PAUSE_SECONDS, max(MIN_PAUSE_SECONDS, pause * 2))
                        continue
                    # The stream or its group is gone (Redis restarted empty, or flushed):
                    # declare it again; what was queued there is lost with Redis's data.
                    log.warning("job_stream_reset", error=str(exc))
                    pause = MIN_PAUSE_SECONDS
                    with contextlib.suppress(RedisError):
                        await self._declare_consumer_group()
                    continue
                for message_id, fields in fetched:
                    yield self._held_message(message_id, fields)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _read_turn(self) -> list[tuple[bytes | str, Any]]:
        """One turn: move due delayed jobs, read new ones, claim those left idle."""
        await self._promote(
            keys=[self.delayed_key, self.queue_name], args=[time.time(), PROMOTE_BATCH]
        )
        fetched: Any = await self._redis.xreadgroup(
            self.consumer_group_name,
            self.consumer_name,
            {self.queue_name: ">"},
            block=self.block,
            count=self.count,
        )
        entries: list[tuple[bytes | str, Any]] = [
            (message_id, fields) for _stream, batch in fetched or [] for message_id, fields in batch
        ]
        claimed: Any = await self._redis.xautoclaim(
            self.queue_name,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            count=self.unacknowledged_batch_size,
        )
        for message_id, fields in claimed[1]:
            log.info("job_redelivered", message_id=_text(message_id))
            entries.append((message_id, fields))
        return entries

    def _held_message(self, message_id: bytes | str, fields: Any) -> AckableMessage:
        key = _text(message_id)
        self._held.add(key)
        return AckableMessage(data=fields[b"data"], ack=self._acknowledger(key))

    def _acknowledger(self, message_id: str) -> Callable[[], Awaitable[None]]:
        async def acknowledge() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.queue_name, self.consumer_group_name, message_id)
                pipe.xdel(self.queue_name, message_id)
                await pipe.execute()
            self._held.discard(message_id)

        return acknowledge

    async def _renew_held(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            if not self._held:
                continue
            try:
                await self._redis.xclaim(
                    self.queue_name,
                    self.consumer_group_name,
                    self.consumer_name,
                    min_idle_time=0,
                    message_ids=list(self._held),
                    justid=True,
                )
            except Exception:
                # The messages then go idle and another worker runs them: at least once.
                log.exception("job_stream_renewal_failed")

    def stop_listening(self) -> None:
        """End `listen` after the read in hand (at most one read's block), however the
        libraries below treat a cancel."""
        self._listening = False

    async def release(self) -> None:
        """Nothing to hand back: what this worker held is claimed by another worker once
        idle for the redelivery timeout."""
        self._held.clear()

    async def backlog(self) -> int:
        """Jobs queued and not yet finished (delayed ones included)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.queue_name)
            pipe.zcard(self.delayed_key)
            queued, delayed = await pipe.execute()
        return int(queued) + int(delayed)

    async def shutdown(self) -> None:
        """Close the connections."""
        await self._redis.aclose()
        await super().shutdown()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
