"""Responses rendered once and kept as ready bytes with their ETag: the cached reads of
machines and patterns. An entry is the ETag, a newline, then the body; keys name their
generation, so an entry is never stale, only unused once its generation is retired."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from beatmachine.core.cache import Cache


@dataclass(frozen=True)
class Rendered:
    """A response body and its ETag."""

    body: bytes
    etag: str


def weak_etag(body: bytes, *, tag: str | None = None) -> str:
    """A weak ETag (the same entity goes out plain, gzip or brotli): `tag` when the
    caller names the content itself, else a digest of the body."""
    return f'W/"{tag or hashlib.sha256(body).hexdigest()[:32]}"'


def pack(rendered: Rendered) -> bytes:
    """A rendered response as one cache value."""
    return rendered.etag.encode() + b"\n" + rendered.body


def unpack(raw: bytes) -> Rendered:
    """A cache value back as the rendered response."""
    etag, _, body = raw.partition(b"\n")
    return Rendered(body=body, etag=etag.decode())


async def read_through(cache: Cache, memo: Cache | None, key: str, ttl: int) -> bytes | None:
    """`key` from the process memo, else from the shared cache (then kept in the memo)."""
    if memo is not None:
        local = await memo.get(key)
        if local is not None:
            return local
    shared = await cache.get(key)
    if shared is not None and memo is not None:
        await memo.set(key, shared, ttl=ttl)
    return shared


async def keep(cache: Cache, memo: Cache | None, key: str, value: bytes, ttl: int) -> None:
    """In the shared cache for other processes, and in this process's memo."""
    await cache.set(key, value, ttl=ttl)
    if memo is not None:
        await memo.set(key, value, ttl=ttl)


async def cached(cache: Cache, memo: Cache | None, key: str, ttl: int) -> Rendered | None:
    """The rendered response kept under `key`, if any."""
    raw = await read_through(cache, memo, key, ttl)
    return None if raw is None else unpack(raw)


async def store(
    cache: Cache, memo: Cache | None, key: str, rendered: Rendered, ttl: int
) -> Rendered:
    """Keep `rendered` under `key`; returns it."""
    await keep(cache, memo, key, pack(rendered), ttl)
    return rendered
