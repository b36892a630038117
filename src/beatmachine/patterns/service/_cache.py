"""What is cached about patterns, and how a change retires it."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core import rendered
from beatmachine.core.cache import Cache
from beatmachine.core.db import after_commit
from beatmachine.core.ids import new_id
from beatmachine.core.rendered import Rendered, weak_etag
from beatmachine.patterns.models import Pattern
from beatmachine.patterns.service._reading import author_of, get_visible
from beatmachine.users.models import User

log = structlog.get_logger(__name__)


COUNT_CACHE_TTL = 30


SEARCH_GENERATION = "pattern-search"


PATTERN_CACHE_TTL = 300


# Outlives every cached copy, so an expired generation can never revive an old copy.
GENERATION_TTL = 2 * PATTERN_CACHE_TTL


def pattern_cache_key(pattern_id: str, generation: str) -> str:
    """Where the anonymous view of a pattern is cached under one of its generations."""
    return f"patterns:doc:{pattern_id}:{generation}"


def generation_key(pattern_id: str) -> str:
    # A change starts a new generation, so a reader that loaded the pattern just before
    # the change can only file its copy under the old one, which nobody reads any more.
    """Where a pattern's current cache generation is kept."""
    return f"patterns:gen:{pattern_id}"


def count_cache_key(flavor: str | None) -> str:
    """Where the total of a public listing (all flavors, or one) is cached."""
    return f"patterns:count:{flavor or '*'}"


def changed(
    session: AsyncSession,
    cache: Cache,
    pattern: Pattern,
    *,
    counts: bool = True,
    retire_searches: bool = False,
    previous_flavor: str | None = None,
) -> None:
    """After commit, drop what is cached about this pattern.

    `counts` (a pattern added, removed or changed in visibility or flavor) also drops
    the cached public totals, of `previous_flavor` too when the flavor changed; plays
    and likes leave them, or the hottest write path would make every listing count
    again. `retire_searches` (an edit, a deletion, a change of visibility) also retires
    every cached search ranking, so a pattern that no longer matches or is no longer
    public leaves search results and their totals at once. A new pattern enters cached
    rankings when they expire (`SEARCH_CACHE_TTL`): creations are too frequent to empty
    the search cache each time.
    """

    async def invalidate() -> None:
        await cache.set(generation_key(pattern.id), new_id("gen").encode(), ttl=GENERATION_TTL)
        if counts:
            flavors = {pattern.flavor, previous_flavor or pattern.flavor}
            await cache.delete(count_cache_key(None), *map(count_cache_key, flavors))
        if retire_searches:
            await cache.generation(SEARCH_GENERATION).advance()

    after_commit(session, invalidate)


Renderer = Callable[[Pattern, User], bytes]


async def rendered_public(
    session: AsyncSession, cache: Cache, pattern_id: str, render: Renderer
) -> Rendered:
    """An anonymous reader's view of a public pattern, as ready bytes from the cache.
    Any change to the pattern (edit, like, play, delete) retires the entry."""
    generation = await cache.get(generation_key(pattern_id))
    key = pattern_cache_key(pattern_id, generation.decode() if generation else "0")
    hit = await rendered.cached(cache, None, key, PATTERN_CACHE_TTL)
    if hit is not None:
        return hit
    pattern = await get_visible(session, pattern_id, None)
    body = render(pattern, await author_of(session, pattern))
    return await rendered.store(
        cache, None, key, Rendered(body=body, etag=weak_etag(body)), PATTERN_CACHE_TTL
    )
