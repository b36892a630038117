"""Queries of the patterns domain: listings and searches with their authors, counters,
the purge."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, delete, func, literal_column, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload

from beatmachine.patterns.models import Pattern, PatternLike
from beatmachine.users.models import User

ORDERINGS = {
    "recent": (Pattern.created_at.desc(), Pattern.id.desc()),
    "popular": (Pattern.plays_count.desc(), Pattern.id.desc()),
    "liked": (Pattern.likes_count.desc(), Pattern.id.desc()),
}


def with_author() -> Select[Pattern, User]:
    """Patterns with their authors; an author's preferences are not needed to show them."""
    return (
        select(Pattern, User)
        .join(User, User.id == Pattern.user_id)
        .options(lazyload(User.preferences))
    )


def live() -> Any:
    """The condition that a pattern is not deleted."""
    return Pattern.deleted_at.is_(None)


def search_condition(dialect: str, query: str) -> tuple[Any, Any]:
    """A full-text match over title and description and its rank, or (None, None) when the
    query has no searchable words. PostgreSQL: tsvector + GIN; SQLite: FTS5."""
    words = [word for word in "".join(ch if ch.isalnum() else " " for ch in query).split() if word]
    if not words:
        return None, None
    words = words[:16]
    if dialect == "postgresql":
        # Each word as a prefix term, all required; words are alphanumeric, so safe.
        tsquery = func.to_tsquery("simple", " & ".join(f"{word.lower()}:*" for word in words))
        vector: Any = literal_column("patterns.search_vector")
        return vector.op("@@")(tsquery), func.ts_rank(vector, tsquery).desc()
    match = " ".join('"' + word + '"*' for word in words)
    matching = text(
        "patterns.id IN (SELECT pattern_id FROM patterns_fts WHERE patterns_fts MATCH :match)"
    ).bindparams(match=match)
    # bm25: lower is better. Column weights (pattern_id, title, description): a title
    # match weighs 2.5 times a description match, as ts_rank's A/B weights do (1.0/0.4).
    rank = text(
        "(SELECT bm25(patterns_fts, 0.0, 2.5, 1.0) FROM patterns_fts "
        "WHERE patterns_fts MATCH :rank_match "
        "AND patterns_fts.pattern_id = patterns.id)"
    ).bindparams(rank_match=match)
    return matching, rank


async def page_with_authors(
    session: AsyncSession,
    conditions: Sequence[Any],
    ordering: Sequence[Any],
    *,
    limit: int,
    offset: int,
) -> list[tuple[Pattern, User]]:
    """One page of matching patterns with their authors. The page's ids come first, from
    the narrow listing indexes; only those rows are then joined to their authors
    (joining first makes the database join every match)."""
    page_ids = (
        select(Pattern.id.label("page_id"))
        .where(*conditions)
        .order_by(*ordering)
        .limit(limit)
        .offset(offset)
        .subquery("page")
    )
    rows = await session.execute(
        with_author().join(page_ids, page_ids.c.page_id == Pattern.id).order_by(*ordering)
    )
    return [(pattern, author) for pattern, author in rows.all()]


async def ranked_ids(
    session: AsyncSession, conditions: Sequence[Any], ordering: Sequence[Any], window: int
) -> tuple[list[str], int]:
    """The ids of the first `window` matches, best first, and the number of all matches
    (one pass: the total comes with every row)."""
    rows = (
        await session.execute(
            select(Pattern.id, func.count().over())
            .where(*conditions)
            .order_by(*ordering)
            .limit(window)
        )
    ).all()
    return [pattern_id for pattern_id, _ in rows], int(rows[0][1]) if rows else 0


async def with_authors_by_id(
    session: AsyncSession, pattern_ids: Sequence[str], conditions: Sequence[Any]
) -> list[tuple[Pattern, User]]:
    """The patterns of `pattern_ids` that still meet `conditions`, with their authors."""
    rows = await session.execute(with_author().where(Pattern.id.in_(pattern_ids), *conditions))
    return [(pattern, author) for pattern, author in rows.all()]


async def count(session: AsyncSession, conditions: Sequence[Any]) -> int:
    """How many patterns meet `conditions`."""
    statement = select(func.count()).select_from(Pattern).where(*conditions)
    return int((await session.execute(statement)).scalar_one())


async def deleted_since(
    session: AsyncSession, user_id: str, since: datetime, *, limit: int
) -> list[tuple[Pattern, User]]:
    """A user's patterns deleted after `since`, newest deletion first, with the author."""
    rows = await session.execute(
        with_author()
        .where(
            Pattern.user_id == user_id, Pattern.deleted_at.is_not(None), Pattern.deleted_at > since
        )
        .order_by(Pattern.deleted_at.desc())
        .limit(limit)
    )
    return [(pattern, author) for pattern, author in rows.all()]


async def live_of_user(session: AsyncSession, user_id: str) -> list[Pattern]:
    """A user's live patterns, oldest first."""
    rows = await session.execute(
        select(Pattern)
        .where(Pattern.user_id == user_id, live())
        .order_by(Pattern.created_at, Pattern.id)
    )
    return list(rows.scalars())


async def counts_of_user(session: AsyncSession, user_id: str) -> tuple[int, int]:
    """(live patterns, live public patterns) of a user, in one query."""
    row = (
        await session.execute(
            select(func.count(), func.count().filter(Pattern.is_public == true())).where(
                Pattern.user_id == user_id, live()
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def liked_by(session: AsyncSession, user_id: str, pattern_ids: Sequence[str]) -> set[str]:
    """Which of `pattern_ids` the user likes, in one query."""
    if not pattern_ids:
        return set()
    rows = await session.execute(
        select(PatternLike.pattern_id).where(
            and_(PatternLike.user_id == user_id, PatternLike.pattern_id.in_(pattern_ids))
        )
    )
    return set(rows.scalars())


async def bump(session: AsyncSession, pattern_id: str, column: str, delta: int) -> int | None:
    """Atomically add `delta` to a counter and return its new value (exact under
    concurrency: the database does the arithmetic)."""
    counter = getattr(Pattern, column)
    result = await session.execute(
        update(Pattern)
        .where(Pattern.id == pattern_id)
        .values({column: counter + delta})
        .returning(counter)
    )
    value = result.scalar_one_or_none()
    return None if value is None else int(value)


SUBTRACT_CHUNK = 1000


async def subtract(session: AsyncSession, column: str, amounts: dict[str, int]) -> None:
    """Take `amounts[pattern_id]` off a counter of each pattern, in one UPDATE."""
    counter = getattr(Pattern, column)
    items = sorted(amounts.items())
    # In chunks, so that the statement's parameters stay well within what a driver takes.
    for start in range(0, len(items), SUBTRACT_CHUNK):
        chunk = dict(items[start : start + SUBTRACT_CHUNK])
        await session.execute(
            update(Pattern)
            .where(Pattern.id.in_(chunk))
            .values({column: counter - case(chunk, value=Pattern.id, else_=0)})
            .execution_options(synchronize_session=False)
        )


async def by_ids(session: AsyncSession, pattern_ids: list[str]) -> list[Pattern]:
    """The patterns of `pattern_ids` that exist, deleted or not (one query)."""
    found: list[Pattern] = []
    for start in range(0, len(pattern_ids), SUBTRACT_CHUNK):
        chunk = pattern_ids[start : start + SUBTRACT_CHUNK]
        found += (await session.execute(select(Pattern).where(Pattern.id.in_(chunk)))).scalars()
    return found


async def counter(session: AsyncSession, pattern_id: str, column: str) -> int:
    """A counter as committed now (not as read earlier in the request)."""
    value = (
        await session.execute(select(getattr(Pattern, column)).where(Pattern.id == pattern_id))
    ).scalar_one()
    return int(value)


async def purge_deleted(session: AsyncSession, before: datetime) -> int:
    """Remove patterns deleted before `before`; returns how many."""
    ids = (
        (
            await session.execute(
                select(Pattern.id).where(
                    Pattern.deleted_at.is_not(None), Pattern.deleted_at < before
                )
            )
        )
        .scalars()
        .all()
    )
    if ids:
        await session.execute(delete(Pattern).where(Pattern.id.in_(ids)))
    return len(ids)
