"""Version history of a pattern: list, fetch, restore, and what changed between two."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.ids import utcnow
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.core.state import AppState
from beatmachine.patterns import service
from beatmachine.patterns.exceptions import PatternVersionNotFound
from beatmachine.patterns.models import Pattern, PatternVersion
from beatmachine.patterns.schemas import Configuration
from beatmachine.users.models import User

PATTERN_FIELDS = ("title", "description", "flavor", "bpm", "keyNote", "isPublic")
INSTRUMENT_FIELDS = ("enabled", "activeProgram", "volume", "pitchOffset")


@dataclass(frozen=True)
class VersionState:
    version: int
    state: dict[str, Any]
    author_id: str | None
    created_at: datetime
    current: bool


async def list_versions(
    session: AsyncSession, pattern: Pattern, params: PageParams
) -> tuple[list[VersionState], Pagination]:
    """Every version, newest first; the first item on page 1 is the current state."""
    total = pattern.version
    current = VersionState(
        pattern.version, service.snapshot(pattern), pattern.user_id, pattern.updated_at, True
    )
    # The current state is not a stored row: it heads page 1, shifting the rows by one.
    statement = (
        select(PatternVersion)
        .where(PatternVersion.pattern_id == pattern.id)
        .order_by(PatternVersion.version.desc())
    )
    offset = params.offset - 1 if params.page > 1 else 0
    limit = params.limit - 1 if params.page == 1 else params.limit
    rows = (
        (await session.execute(statement.limit(max(limit, 0)).offset(max(offset, 0))))
        .scalars()
        .all()
    )
    items = [
        VersionState(row.version, row.snapshot, row.author_id, row.created_at, False)
        for row in rows
    ]
    if params.page == 1:
        items = [current, *items]
    return items, params.pagination(total)


async def get_version(session: AsyncSession, pattern: Pattern, version: int) -> VersionState:
    if version == pattern.version:
        return VersionState(
            version, service.snapshot(pattern), pattern.user_id, pattern.updated_at, True
        )
    row = (
        await session.execute(
            select(PatternVersion).where(
                PatternVersion.pattern_id == pattern.id, PatternVersion.version == version
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise PatternVersionNotFound()
    return VersionState(row.version, row.snapshot, row.author_id, row.created_at, False)


async def restore_version(
    session: AsyncSession, state: AppState, user: User, pattern_id: str, version: int
) -> Pattern:
    """Make an old version current again; this is itself a new version."""
    pattern = await service.get_owned(session, pattern_id, user)
    old = await get_version(session, pattern, version)
    # The machine may have changed since: the old configuration must still be valid.
    against = await service.validate_configuration(
        session, old.state["flavor"], Configuration.model_validate(old.state["configuration"])
    )
    before = service.snapshot(pattern)
    await service.record_version(session, pattern, user)
    service.apply_snapshot(pattern, old.state)
    pattern.machine_id, pattern.machine_version = against.machine_id, against.version
    pattern.updated_at = utcnow()
    await session.flush()
    service.changed(
        session, state.cache, pattern, retire_searches=True, previous_flavor=before["flavor"]
    )
    after = service.snapshot(pattern)
    service.record_updated(
        session, pattern, [name for name in after if after[name] != before[name]]
    )
    return pattern


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What changed from `old` to `new`: per field, and per instrument for each of its
    settings (instruments added or removed are listed as such)."""
    fields = {
        name: {"from": old.get(name), "to": new.get(name)}
        for name in PATTERN_FIELDS
        if old.get(name) != new.get(name)
    }
    before = {i["id"]: i for i in old["configuration"]["instruments"]}
    after = {i["id"]: i for i in new["configuration"]["instruments"]}
    instruments: list[dict[str, Any]] = []
    for instrument_id in sorted(before.keys() | after.keys()):
        if instrument_id not in after:
            instruments.append({"id": instrument_id, "change": "removed"})
        elif instrument_id not in before:
            instruments.append(
                {"id": instrument_id, "change": "added", "settings": after[instrument_id]}
            )
        else:
            changes = {
                name: {
                    "from": before[instrument_id].get(name),
                    "to": after[instrument_id].get(name),
                }
                for name in INSTRUMENT_FIELDS
                if before[instrument_id].get(name) != after[instrument_id].get(name)
            }
            if changes:
                instruments.append({"id": instrument_id, "change": "modified", "fields": changes})
    return {"fields": fields, "instruments": instruments}
