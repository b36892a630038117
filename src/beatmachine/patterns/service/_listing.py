"""Listings and searches of patterns, with their authors, a page at a time."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import true
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.cache import Cache
from beatmachine.core.ids import utcnow
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.patterns import repository
from beatmachine.patterns.models import Pattern
from beatmachine.patterns.schemas import SortOrder
from beatmachine.patterns.service._cache import COUNT_CACHE_TTL, SEARCH_GENERATION, count_cache_key
from beatmachine.patterns.service._writing import RESTORE_WINDOW
from beatmachine.users.models import User

log = structlog.get_logger(__name__)


# Public searches: the ranked ids of the first pages, shared by every client for a while.
SEARCH_WINDOW = 1000
SEARCH_CACHE_TTL = 30
DELETED_LIST_LIMIT = 500


@dataclass(frozen=True)
class ListFilter:
    """What a listing asks for: its order, and the filters of the contract."""

    sort: SortOrder = "recent"
    flavor: str | None = None
    user_id: str | None = None
    search: str | None = None


async def list_patterns(
    session: AsyncSession,
    cache: Cache,
    params: PageParams,
    filters: ListFilter,
    *,
    owner: User | None = None,
    include_private: bool = False,
) -> tuple[list[tuple[Pattern, User]], Pagination]:
    """Public patterns (or the owner's own), with their authors, in one query per page."""
    conditions: list[Any] = [repository.live()]
    if owner is not None:
        conditions.append(Pattern.user_id == owner.id)
        if not include_private:
            conditions.append(Pattern.is_public == true())
    else:
        conditions.append(Pattern.is_public == true())
    if filters.flavor:
        conditions.append(Pattern.flavor == filters.flavor)
    if filters.user_id:
        conditions.append(Pattern.user_id == filters.user_id)
    ordering: list[Any] = list(repository.ORDERINGS[filters.sort])
    if filters.search:
        matching, rank = repository.search_condition(
            session.get_bind().dialect.name, filters.search
        )
        if matching is None:
            return [], params.pagination(0)
        visible = list(conditions)
        conditions.append(matching)
        ordering = [rank, *ordering]
        if owner is None and params.offset + params.limit <= SEARCH_WINDOW:
            ranked, total = await _search_ranking(session, cache, conditions, ordering, filters)
            page = ranked[params.offset : params.offset + params.limit]
            return await _rows_in_order(session, page, visible), params.pagination(total)
    total = await _count(
        session,
        cache,
        conditions,
        # Only the big public listings are worth caching; the rest are small and exact.
        cacheable=owner is None and not filters.user_id and not filters.search,
        flavor=filters.flavor,
    )
    rows = await repository.page_with_authors(
        session, conditions, ordering, limit=params.limit, offset=params.offset
    )
    return rows, params.pagination(total)


def _search_cache_key(generation: str, filters: ListFilter) -> str:
    words = " ".join(filters.search.lower().split()) if filters.search else ""
    digest = hashlib.sha256(
        f"{words}\x1f{filters.sort}\x1f{filters.flavor}\x1f{filters.user_id}".encode()
    ).hexdigest()[:32]
    return f"patterns:search:{generation}:{digest}"


async def _search_ranking(
    session: AsyncSession,
    cache: Cache,
    conditions: Sequence[Any],
    ordering: Sequence[Any],
    filters: ListFilter,
) -> tuple[list[str], int]:
    """The ids of the first `SEARCH_WINDOW` public matches of a search, best first, and
    the number of all matches.

    Ranking has to look at every match, so its cost grows with the table; one ranking
    serves every page of the window and every client asking the same for
    `SEARCH_CACHE_TTL` seconds (pages stay consistent while someone pages through).
    """
    key = _search_cache_key(await cache.generation(SEARCH_GENERATION).current(), filters)
    cached = await cache.get(key)
    if cached is not None:
        count, _, ids = cached.decode().partition("\n")
        return (ids.split(",") if ids else []), int(count)
    ranked, total = await repository.ranked_ids(session, conditions, ordering, SEARCH_WINDOW)
    await cache.set(key, f"{total}\n{','.join(ranked)}".encode(), ttl=SEARCH_CACHE_TTL)
    return ranked, total


async def _rows_in_order(
    session: AsyncSession, pattern_ids: Sequence[str], conditions: Sequence[Any]
) -> list[tuple[Pattern, User]]:
    """The patterns of `pattern_ids` with their authors, in that order. Visibility is
    checked again, as a second guard: a pattern made private or deleted since the
    ranking was cached is left out rather than shown. (Not the text match: an edit
    retires the ranking, and matching again would make the database consult the
    full-text index for every match instead of 20 primary-key lookups.)"""
    if not pattern_ids:
        return []
    found = {
        pattern.id: (pattern, author)
        for pattern, author in await repository.with_authors_by_id(session, pattern_ids, conditions)
    }
    return [found[pattern_id] for pattern_id in pattern_ids if pattern_id in found]


async def _count(
    session: AsyncSession,
    cache: Cache,
    conditions: Sequence[Any],
    *,
    cacheable: bool,
    flavor: str | None,
) -> int:
    key = count_cache_key(flavor)
    if cacheable:
        cached = await cache.get(key)
        if cached is not None:
            return int(cached)
    total = await repository.count(session, conditions)
    if cacheable:
        await cache.set(key, str(total).encode(), ttl=COUNT_CACHE_TTL)
    return total


async def list_deleted(session: AsyncSession, user: User) -> list[tuple[Pattern, User]]:
    """The caller's deleted patterns that can still be restored, newest deletion first."""
    return await repository.deleted_since(
        session, user.id, utcnow() - RESTORE_WINDOW, limit=DELETED_LIST_LIMIT
    )


async def all_of_user(session: AsyncSession, user: User) -> list[Pattern]:
    """Every live pattern of `user`, oldest first (the bundle export)."""
    return await repository.live_of_user(session, user.id)


async def count_for_user(session: AsyncSession, user_id: str) -> tuple[int, int]:
    """(patterns created, patterns shared publicly) of a user, from the patterns table."""
    return await repository.counts_of_user(session, user_id)
