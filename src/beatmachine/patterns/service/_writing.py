"""Creating, editing, deleting and restoring patterns (each edit keeps a version)."""

from __future__ import annotations

from datetime import timedelta

import structlog
from pydantic.alias_generators import to_camel
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core import events
from beatmachine.core.db import transaction
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.state import AppState
from beatmachine.patterns import repository
from beatmachine.patterns.events import (
    PatternCreated,
    PatternDeleted,
    PatternRestored,
    PatternUpdated,
)
from beatmachine.patterns.exceptions import PatternNotFound, RestoreWindowOver
from beatmachine.patterns.models import Pattern, PatternVersion
from beatmachine.patterns.schemas import Configuration, PatternCreate, PatternUpdate
from beatmachine.patterns.service._cache import changed
from beatmachine.patterns.service._reading import get_owned
from beatmachine.patterns.service._snapshots import (
    configuration_json,
    instrument_ids,
    snapshot,
    validate_configuration,
)
from beatmachine.users.models import User

log = structlog.get_logger(__name__)


RESTORE_WINDOW = timedelta(days=7)


PATTERN_CREATE_WINDOW = 3600


async def check_create_limit(state: AppState, user: User) -> None:
    """Count a creation against the user's hourly limit; `RateLimitExceeded` past it."""
    await state.limiter.enforce(
        "pattern-create",
        user.id,
        limit=state.settings.rate_limit_pattern_create,
        window=PATTERN_CREATE_WINDOW,
        message="You have created too many patterns this hour; try again later.",
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
    """Move the owner's pattern to the bin: hidden everywhere, restorable for 7 days."""
    pattern = await get_owned(session, pattern_id, user)
    pattern.deleted_at = utcnow()
    await session.flush()
    changed(session, state.cache, pattern, retire_searches=True)
    events.record(session, PatternDeleted(pattern_id=pattern.id, owner_id=pattern.user_id))


async def restore(session: AsyncSession, state: AppState, user: User, pattern_id: str) -> Pattern:
    """Take the owner's pattern back out of the bin, within the restore window."""
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
