"""Saved patterns: create, read, list, update, soft delete and restore, likes, plays
and forks. Version history, sharing and export live in their own modules."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from pydantic.alias_generators import to_camel
from sqlalchemy import delete, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core import events
from beatmachine.core.cache import Cache
from beatmachine.core.db import after_commit, insert_ignoring_conflict, transaction
from beatmachine.core.errors import RateLimitExceeded
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.core.state import AppState
from beatmachine.machines import service as machines_service
from beatmachine.patterns import repository
from beatmachine.patterns.events import (
    PatternCreated,
    PatternDeleted,
    PatternForked,
    PatternLiked,
    PatternPlayed,
    PatternRestored,
    PatternUnliked,
    PatternUpdated,
)
from beatmachine.patterns.exceptions import NotPatternOwner, PatternNotFound, RestoreWindowOver
from beatmachine.patterns.models import Pattern, PatternLike, PatternVersion
from beatmachine.patterns.schemas import Configuration, PatternCreate, PatternUpdate, SortOrder
from beatmachine.users.models import User

log = structlog.get_logger(__name__)

RESTORE_WINDOW = timedelta(days=7)
FORK_SUFFIX = " (Fork)"
COUNT_CACHE_TTL = 30
# Public searches: the ranked ids of the first pages, shared by every client for a while.
SEARCH_WINDOW = 1000
SEARCH_CACHE_TTL = 30
SEARCH_GENERATION = "pattern-search"
PATTERN_CACHE_TTL = 300
# Outlives every cached copy, so an expired generation can never revive an old copy.
GENERATION_TTL = 2 * PATTERN_CACHE_TTL
PATTERN_CREATE_WINDOW = 3600


def pattern_cache_key(pattern_id: str, generation: str) -> str:
    return f"patterns:doc:{pattern_id}:{generation}"


def _generation_key(pattern_id: str) -> str:
    # A change starts a new generation, so a reader that loaded the pattern just before
    # the change can only file its copy under the old one, which nobody reads any more.
    return f"patterns:gen:{pattern_id}"


def count_cache_key(flavor: str | None) -> str:
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
        await cache.set(_generation_key(pattern.id), new_id("gen").encode(), ttl=GENERATION_TTL)
        if counts:
            flavors = {pattern.flavor, previous_flavor or pattern.flavor}
            await cache.delete(count_cache_key(None), *map(count_cache_key, flavors))
        if retire_searches:
            await cache.generation(SEARCH_GENERATION).advance()

    after_commit(session, invalidate)


# --- snapshots: the user-editable state of a pattern ------------------------------------------


def snapshot(pattern: Pattern) -> dict[str, Any]:
    return {
        "title": pattern.title,
        "description": pattern.description,
        "flavor": pattern.flavor,
        "bpm": pattern.bpm,
        "keyNote": pattern.key_note,
        "isPublic": pattern.is_public,
        "configuration": pattern.configuration,
    }


def apply_snapshot(pattern: Pattern, state: dict[str, Any]) -> None:
    pattern.title = state["title"]
    pattern.description = state["description"]
    pattern.flavor = state["flavor"]
    pattern.bpm = state["bpm"]
    pattern.key_note = state["keyNote"]
    pattern.is_public = state["isPublic"]
    pattern.configuration = state["configuration"]


async def validate_configuration(
    session: AsyncSession, flavor: str, configuration: Configuration
) -> machines_service.ValidatedAgainst:
    """Every instrument must exist in the flavor's machine, with a program it has."""
    choices = [
        machines_service.InstrumentChoice(id=i.id, active_program=i.active_program)
        for i in configuration.instruments
    ]
    return await machines_service.validate_choices(
        session, flavor, choices, "configuration.instruments"
    )


def configuration_json(configuration: Configuration) -> dict[str, Any]:
    return configuration.model_dump(mode="json", by_alias=True)


# --- reading -----------------------------------------------------------------------------------


async def get_live(session: AsyncSession, pattern_id: str, *, for_update: bool = False) -> Pattern:
    pattern = await session.get(Pattern, pattern_id, with_for_update=for_update)
    if pattern is None or pattern.deleted_at is not None:
        raise PatternNotFound()
    return pattern


async def get_visible(session: AsyncSession, pattern_id: str, viewer: User | None) -> Pattern:
    """A pattern the viewer may see; someone else's private pattern is simply not found."""
    pattern = await get_live(session, pattern_id)
    if not pattern.is_public and (viewer is None or viewer.id != pattern.user_id):
        raise PatternNotFound()
    return pattern


async def get_owned(session: AsyncSession, pattern_id: str, user: User) -> Pattern:
    """The caller's own pattern, locked for the change about to be made."""
    pattern = await get_live(session, pattern_id, for_update=True)
    if pattern.user_id != user.id:
        if not pattern.is_public:
            raise PatternNotFound()
        raise NotPatternOwner()
    return pattern


async def author_of(session: AsyncSession, pattern: Pattern) -> User:
    user = await session.get(User, pattern.user_id)
    assert user is not None  # the foreign key guarantees it
    return user


async def is_liked(session: AsyncSession, pattern: Pattern, viewer: User | None) -> bool:
    if viewer is None:
        return False
    return pattern.id in await repository.liked_by(session, viewer.id, [pattern.id])


@dataclass(frozen=True)
class ListFilter:
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
    # The page's ids first, from the narrow listing indexes; only those rows are then
    # joined to their authors (joining first makes the database join every match).
    page_ids = (
        select(Pattern.id.label("page_id"))
        .where(*conditions)
        .order_by(*ordering)
        .limit(params.limit)
        .offset(params.offset)
        .subquery("page")
    )
    rows = await session.execute(
        repository.with_author()
        .join(page_ids, page_ids.c.page_id == Pattern.id)
        .order_by(*ordering)
    )
    return [(pattern, author) for pattern, author in rows.all()], params.pagination(total)


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
    rows = (
        await session.execute(
            select(Pattern.id, func.count().over())
            .where(*conditions)
            .order_by(*ordering)
            .limit(SEARCH_WINDOW)
        )
    ).all()
    ranked = [pattern_id for pattern_id, _ in rows]
    total = int(rows[0][1]) if rows else 0
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
    rows = await session.execute(
        repository.with_author().where(Pattern.id.in_(pattern_ids), *conditions)
    )
    found = {pattern.id: (pattern, author) for pattern, author in rows.all()}
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
    total = int(
        (
            await session.execute(select(func.count()).select_from(Pattern).where(*conditions))
        ).scalar_one()
    )
    if cacheable:
        await cache.set(key, str(total).encode(), ttl=COUNT_CACHE_TTL)
    return total


# --- writing -----------------------------------------------------------------------------------


async def check_create_limit(state: AppState, user: User) -> None:
    if not state.limiter.enabled:
        return
    decision = await state.limiter.hit(
        "pattern-create",
        user.id,
        limit=state.settings.rate_limit_pattern_create,
        window=PATTERN_CREATE_WINDOW,
    )
    if not decision.allowed:
        raise RateLimitExceeded(
            "You have created too many patterns this hour; try again later.",
            headers={"Retry-After": str(decision.retry_after)},
        )


async def create(
    session: AsyncSession,
    state: AppState,
    user: User,
    body: PatternCreate,
    *,
    original_id: str | None = None,
) -> Pattern:
    """Store a new pattern after validating its configuration against its flavor's machine."""
    against = await validate_configuration(session, body.flavor, body.configuration)
    now = utcnow()
    pattern = Pattern(
        id=new_id("pat"),
        user_id=user.id,
        title=body.title,
        description=body.description,
        flavor=body.flavor,
        bpm=body.bpm,
        key_note=body.key_note,
        is_public=body.is_public,
        configuration=configuration_json(body.configuration),
        machine_id=against.machine_id,
        machine_version=against.version,
        version=1,
        plays_count=0,
        likes_count=0,
        comments_count=0,
        forks_count=0,
        original_id=original_id,
        created_at=now,
        updated_at=now,
    )
    session.add(pattern)
    await session.flush()
    changed(session, state.cache, pattern)
    events.record(
        session,
        PatternCreated(
            pattern_id=pattern.id,
            owner_id=user.id,
            title=pattern.title,
            flavor=pattern.flavor,
            bpm=pattern.bpm,
            key_note=pattern.key_note,
            is_public=pattern.is_public,
            instruments=instrument_ids(pattern),
            original_id=original_id,
        ),
    )
    return pattern


def instrument_ids(pattern: Pattern) -> list[str]:
    """The instruments a pattern switches on."""
    return [i["id"] for i in pattern.configuration["instruments"] if i.get("enabled", True)]


def record_updated(session: AsyncSession, pattern: Pattern, changed_fields: list[str]) -> None:
    """Record that `pattern` changed (an edit or a restored version)."""
    events.record(
        session,
        PatternUpdated(
            pattern_id=pattern.id,
            owner_id=pattern.user_id,
            version=pattern.version,
            changed=sorted(changed_fields),
            title=pattern.title,
            flavor=pattern.flavor,
            bpm=pattern.bpm,
            key_note=pattern.key_note,
            is_public=pattern.is_public,
            instruments=instrument_ids(pattern),
        ),
    )


async def update(
    session: AsyncSession, state: AppState, user: User, pattern_id: str, body: PatternUpdate
) -> Pattern:
    """Apply a partial update; the previous state is kept as a numbered version."""
    pattern = await get_owned(session, pattern_id, user)
    fields = body.model_fields_set
    flavor = body.flavor if "flavor" in fields and body.flavor else pattern.flavor
    configuration = (
        body.configuration
        if "configuration" in fields and body.configuration is not None
        else Configuration.model_validate(pattern.configuration)
    )
    against = None
    if "flavor" in fields or "configuration" in fields:
        against = await validate_configuration(session, flavor, configuration)
    await record_version(session, pattern, user)
    old_flavor = pattern.flavor
    for field in fields:
        value = getattr(body, field)
        setattr(pattern, field, configuration_json(value) if field == "configuration" else value)
    if against is not None:
        pattern.machine_id, pattern.machine_version = against.machine_id, against.version
    pattern.updated_at = utcnow()
    await session.flush()
    changed(session, state.cache, pattern, retire_searches=True, previous_flavor=old_flavor)
    record_updated(session, pattern, [to_camel(field) for field in fields])
    return pattern


async def record_version(session: AsyncSession, pattern: Pattern, user: User) -> None:
    """Keep the current state as version `pattern.version` and move on to the next."""
    session.add(
        PatternVersion(
            id=new_id("pav"),
            pattern_id=pattern.id,
            version=pattern.version,
            snapshot=snapshot(pattern),
            author_id=user.id,
            # The version is the state as saved then, not when it was replaced.
            created_at=pattern.updated_at,
        )
    )
    pattern.version += 1


async def soft_delete(session: AsyncSession, state: AppState, user: User, pattern_id: str) -> None:
    pattern = await get_owned(session, pattern_id, user)
    pattern.deleted_at = utcnow()
    await session.flush()
    changed(session, state.cache, pattern, retire_searches=True)
    events.record(session, PatternDeleted(pattern_id=pattern.id, owner_id=pattern.user_id))


async def list_deleted(session: AsyncSession, user: User) -> list[tuple[Pattern, User]]:
    """The caller's deleted patterns that can still be restored, newest deletion first."""
    since = utcnow() - RESTORE_WINDOW
    rows = await session.execute(
        repository.with_author()
        .where(
            Pattern.user_id == user.id, Pattern.deleted_at.is_not(None), Pattern.deleted_at > since
        )
        .order_by(Pattern.deleted_at.desc())
        .limit(500)
    )
    return [(pattern, author) for pattern, author in rows.all()]


async def restore(session: AsyncSession, state: AppState, user: User, pattern_id: str) -> Pattern:
    pattern = await session.get(Pattern, pattern_id, with_for_update=True)
    if pattern is None or pattern.user_id != user.id or pattern.deleted_at is None:
        raise PatternNotFound()
    if pattern.deleted_at <= utcnow() - RESTORE_WINDOW:
        raise RestoreWindowOver()
    pattern.deleted_at = None
    await session.flush()
    changed(session, state.cache, pattern)
    events.record(
        session,
        PatternRestored(
            pattern_id=pattern.id, owner_id=pattern.user_id, is_public=pattern.is_public
        ),
    )
    return pattern


async def purge_deleted(state: AppState) -> int:
    """Periodic job: remove patterns deleted more than the restore window ago."""
    async with transaction(state.sessionmaker) as session:
        return await repository.purge_deleted(session, utcnow() - RESTORE_WINDOW)


# --- likes, plays, forks -----------------------------------------------------------------------


async def like(session: AsyncSession, state: AppState, user: User, pattern_id: str) -> int:
    """Idempotent: liking twice counts once. Returns the like count."""
    pattern = await get_visible(session, pattern_id, user)
    added = await insert_ignoring_conflict(
        session,
        PatternLike.__table__,
        {"pattern_id": pattern.id, "user_id": user.id, "created_at": utcnow()},
        ["pattern_id", "user_id"],
    )
    changed(session, state.cache, pattern, counts=False)
    if added:
        events.record(
            session,
            PatternLiked(pattern_id=pattern.id, owner_id=pattern.user_id, user_id=user.id),
        )
        return await repository.bump(session, pattern.id, "likes_count", 1) or 0
    return await repository.counter(session, pattern.id, "likes_count")


async def unlike(session: AsyncSession, state: AppState, user: User, pattern_id: str) -> int:
    pattern = await get_visible(session, pattern_id, user)
    result = await session.execute(
        delete(PatternLike).where(
            PatternLike.pattern_id == pattern.id, PatternLike.user_id == user.id
        )
    )
    changed(session, state.cache, pattern, counts=False)
    if getattr(result, "rowcount", 0) == 1:
        events.record(
            session,
            PatternUnliked(pattern_id=pattern.id, owner_id=pattern.user_id, user_id=user.id),
        )
        return await repository.bump(session, pattern.id, "likes_count", -1) or 0
    return await repository.counter(session, pattern.id, "likes_count")


async def play(session: AsyncSession, state: AppState, viewer: User | None, pattern_id: str) -> int:
    """Count a play: one atomic UPDATE, exact however many arrive at once."""
    pattern = await get_visible(session, pattern_id, viewer)
    count = await repository.bump(session, pattern.id, "plays_count", 1)
    changed(session, state.cache, pattern, counts=False)
    events.record(
        session,
        PatternPlayed(
            pattern_id=pattern.id,
            owner_id=pattern.user_id,
            player_id=viewer.id if viewer is not None else None,
        ),
    )
    return count or 0


async def fork(session: AsyncSession, state: AppState, user: User, pattern_id: str) -> Pattern:
    """Copy a pattern the caller can see into a new private pattern of theirs."""
    original = await get_visible(session, pattern_id, user)
    title = original.title[: 200 - len(FORK_SUFFIX)] + FORK_SUFFIX
    body = PatternCreate.model_validate(
        {
            **snapshot(original),
            "title": title,
            "isPublic": False,
        }
    )
    copy = await create(session, state, user, body, original_id=original.id)
    await repository.bump(session, original.id, "forks_count", 1)
    changed(session, state.cache, original, counts=False)
    events.record(
        session,
        PatternForked(
            pattern_id=original.id, owner_id=original.user_id, fork_id=copy.id, user_id=user.id
        ),
    )
    return copy


# --- profile stats -----------------------------------------------------------------------------


async def count_for_user(session: AsyncSession, user_id: str) -> tuple[int, int]:
    """(patterns created, patterns shared publicly) of a user, from the patterns table."""
    row = (
        await session.execute(
            select(func.count(), func.count().filter(Pattern.is_public == true())).where(
                Pattern.user_id == user_id, Pattern.deleted_at.is_(None)
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def all_of_user(session: AsyncSession, user: User) -> list[Pattern]:
    rows = await session.execute(
        select(Pattern)
        .where(Pattern.user_id == user.id, repository.live())
        .order_by(Pattern.created_at, Pattern.id)
    )
    return list(rows.scalars())


# --- cached public reads -------------------------------------------------------------------

Renderer = Callable[[Pattern, User], bytes]


@dataclass(frozen=True)
class Rendered:
    body: bytes
    etag: str


async def rendered_public(
    session: AsyncSession, cache: Cache, pattern_id: str, render: Renderer
) -> Rendered:
    """An anonymous reader's view of a public pattern, as ready bytes from the cache.
    Any change to the pattern (edit, like, play, delete) drops the entry."""
    generation = await cache.get(_generation_key(pattern_id))
    key = pattern_cache_key(pattern_id, generation.decode() if generation else "0")
    cached = await cache.get(key)
    if cached is not None:
        tag, _, cached_body = cached.partition(b"\n")
        return Rendered(body=cached_body, etag=tag.decode())
    pattern = await get_visible(session, pattern_id, None)
    body = render(pattern, await author_of(session, pattern))
    # Weak: the same view goes out plain, gzip or brotli.
    etag = 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    await cache.set(key, etag.encode() + b"\n" + body, ttl=PATTERN_CACHE_TTL)
    return Rendered(body=body, etag=etag)
