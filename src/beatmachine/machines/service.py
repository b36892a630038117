"""Machines: published versions, rollback, custom instruments, and the questions other
domains ask (which flavors exist, is this configuration valid for one)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import anyio.to_thread
import orjson
import structlog
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from beatmachine.core import rendered
from beatmachine.core.cache import Cache
from beatmachine.core.compression import Encoding, compress
from beatmachine.core.db import after_commit
from beatmachine.core.errors import ValidationFailed
from beatmachine.core.ids import new_id
from beatmachine.core.pagination import PageParams, Pagination, paginate
from beatmachine.core.rendered import Rendered, weak_etag
from beatmachine.machines.document import Instrument, MachineDocument
from beatmachine.machines.exceptions import (
    InstrumentExists,
    InstrumentNotFound,
    MachineExists,
    MachineNotFound,
    MachineVersionNotFound,
)
from beatmachine.machines.models import Machine, MachineVersion
from beatmachine.machines.xml import machine_to_xml

log = structlog.get_logger(__name__)

CACHE_TTL_SECONDS = 3600
# Every cached document is filed under the current generation; a publish starts a new
# one. A reader that loaded an old version just before a publish can then only file it
# under the old generation, which nobody reads any more.
GENERATION = "machines"


def document_cache_key(generation: str, machine_id: str, representation: str) -> str:
    """Where a machine's current version is cached in one representation."""
    return f"machines:doc:{generation}:{machine_id}:{representation}"


def list_cache_key(generation: str) -> str:
    """Where the list of machines is cached under a generation."""
    return f"machines:list:{generation}"


def version_etag(content_hash: str, version: int, representation: str) -> str:
    """The ETag of one version in one representation (`json`, `xml`): it names the
    content, so every process and every cache agrees on it."""
    return weak_etag(b"", tag=f"{content_hash[:32]}-v{version}-{representation}")


def content_hash(document: MachineDocument) -> str:
    """A digest of the document's content (canonical JSON), the same for equal content."""
    canonical = orjson.dumps(document.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Published:
    machine: Machine
    version: MachineVersion
    document: MachineDocument


@dataclass(frozen=True)
class PublishResult:
    published: Published
    changed: bool


async def invalidate(cache: Cache, machine_id: str) -> None:
    """Start a new cache generation after `machine_id` changed; every API process sharing
    the cache serves the new version from then on (this one at once, the others as soon
    as the generation's message reaches them)."""
    generations = cache.generation(GENERATION)
    old = await generations.current()
    await generations.advance()
    await cache.delete(
        list_cache_key(old),
        document_cache_key(old, machine_id, "json"),
        document_cache_key(old, machine_id, "xml"),
    )


def _invalidate_after_commit(session: AsyncSession, cache: Cache, machine_id: str) -> None:
    async def run() -> None:
        await invalidate(cache, machine_id)

    after_commit(session, run)


async def list_machines(session: AsyncSession) -> Sequence[Machine]:
    """Every machine, by id."""
    return (await session.execute(select(Machine).order_by(Machine.id))).scalars().all()


async def get_machine(session: AsyncSession, machine_id: str) -> Machine:
    """The machine with this id, or `MachineNotFound`."""
    machine = await session.get(Machine, machine_id)
    if machine is None:
        raise MachineNotFound()
    return machine


async def get_published(
    session: AsyncSession, machine_id: str, version: int | None = None
) -> Published:
    """A machine's current version, or the numbered one."""
    machine = await get_machine(session, machine_id)
    number = machine.current_version if version is None else version
    row = (
        await session.execute(
            select(MachineVersion).where(
                MachineVersion.machine_id == machine_id, MachineVersion.version == number
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise MachineVersionNotFound()
    return Published(machine, row, MachineDocument.model_validate(row.document))


# Memo keys of each published document's instrument titles, by its content hash (a
# version's content never changes, so an entry is never stale).
_TITLES_MEMO_PREFIX = "machines:titles:"


def _is_current_version() -> ColumnElement[bool]:
    return (Machine.id == MachineVersion.machine_id) & (
        Machine.current_version == MachineVersion.version
    )


async def instrument_titles(session: AsyncSession, memo: Cache) -> dict[str, str]:
    """The title of every instrument of the machines' current versions, by instrument id
    (the first machine by id naming it wins); each document is parsed once per process
    (`memo`, the app's per-process memo, keeps the titles by content hash)."""
    current = (
        await session.execute(
            select(MachineVersion.machine_id, MachineVersion.content_hash)
            .join(Machine, _is_current_version())
            .order_by(MachineVersion.machine_id)
        )
    ).all()
    by_digest: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for machine_id, digest in current:
        kept = await memo.get(_TITLES_MEMO_PREFIX + digest)
        if kept is None:
            missing.append(machine_id)
        else:
            by_digest[digest] = orjson.loads(kept)
    if missing:
        rows = await session.execute(
            select(MachineVersion.content_hash, MachineVersion.document)
            .join(Machine, _is_current_version())
            .where(MachineVersion.machine_id.in_(missing))
        )
        for digest, document in rows.all():
            parsed = MachineDocument.model_validate(document)
            by_digest[digest] = {i.id: i.title for i in parsed.instruments}
            await memo.set(_TITLES_MEMO_PREFIX + digest, orjson.dumps(by_digest[digest]))
    titles: dict[str, str] = {}
    for _, digest in current:
        for instrument_id, title in by_digest.get(digest, {}).items():
            titles.setdefault(instrument_id, title)
    return titles


async def list_versions(
    session: AsyncSession, machine_id: str, params: PageParams
) -> tuple[list[MachineVersion], Pagination]:
    """A page of the machine's versions, newest first."""
    await get_machine(session, machine_id)
    statement = (
        select(MachineVersion)
        .where(MachineVersion.machine_id == machine_id)
        .order_by(MachineVersion.version.desc())
    )
    return await paginate(session, statement, params)


async def publish(
    session: AsyncSession,
    cache: Cache,
    document: MachineDocument,
    *,
    author_id: str | None,
    change_note: str = "",
    create: bool | None = None,
    skip_if_unchanged: bool = False,
) -> PublishResult:
    """Publish `document` as the machine's next version (creating the machine if needed).

    `create=True` refuses an existing machine, `create=False` a missing one.
    `skip_if_unchanged` makes re-importing the same content a no-op.
    """
    machine = await session.get(Machine, document.id, with_for_update=True)
    if machine is None and create is False:
        raise MachineNotFound()
    if machine is not None and create is True:
        raise MachineExists()
    if not document.title:
        # The front end's files may leave the title empty (salsa.xml does); the list and
        # the document must still agree on one.
        title = machine.title if machine is not None else f"{document.flavor} Beat Machine"
        document = document.model_copy(update={"title": title})
    digest = content_hash(document)
    if machine is not None and skip_if_unchanged:
        current = await get_published(session, machine.id)
        if current.version.content_hash == digest:
            return PublishResult(current, changed=False)
    if machine is None:
        machine = Machine(
            id=document.id,
            title=document.title,
            flavor=document.flavor,
            description=document.description,
            current_version=0,
        )
        try:
            async with session.begin_nested():
                session.add(machine)
                await session.flush()
        except IntegrityError as exc:
            raise MachineExists() from exc
    else:
        if document.flavor != machine.flavor:
            raise ValidationFailed(
                "A machine keeps its flavor; create a new machine for another flavor.",
                details={
                    "fields": [{"field": "flavor", "message": "cannot change", "type": "immutable"}]
                },
            )
        machine.title = document.title
        machine.description = document.description
    next_version = (
        await session.execute(
            select(func.coalesce(func.max(MachineVersion.version), 0)).where(
                MachineVersion.machine_id == machine.id
            )
        )
    ).scalar_one() + 1
    version = MachineVersion(
        id=new_id("mcv"),
        machine_id=machine.id,
        version=next_version,
        document=document.model_dump(mode="json"),
        content_hash=digest,
        change_note=change_note,
        author_id=author_id,
    )
    session.add(version)
    machine.current_version = next_version
    await session.flush()
    _invalidate_after_commit(session, cache, machine.id)
    log.info("machine_published", machine_id=machine.id, version=next_version)
    return PublishResult(Published(machine, version, document), changed=True)


async def rollback(
    session: AsyncSession,
    cache: Cache,
    machine_id: str,
    version: int,
    *,
    author_id: str | None,
    change_note: str = "",
) -> Published:
    """Publish an old version again, as a new version."""
    old = await get_published(session, machine_id, version)
    note = change_note or f"Rollback to version {version}"
    result = await publish(
        session, cache, old.document, author_id=author_id, change_note=note, create=False
    )
    return result.published


async def add_instrument(
    session: AsyncSession,
    cache: Cache,
    machine_id: str,
    instrument: Instrument,
    *,
    author_id: str | None,
    change_note: str = "",
) -> Published:
    """Publish a new version with `instrument` added; an existing id is `InstrumentExists`."""
    current = await get_published(session, machine_id)
    if current.document.instrument(instrument.id) is not None:
        raise InstrumentExists()
    document = current.document.model_copy(
        update={"instruments": [*current.document.instruments, instrument]}
    )
    note = change_note or f"Add instrument {instrument.id}"
    return (await _republish(session, cache, document, author_id, note)).published


async def replace_instrument(
    session: AsyncSession,
    cache: Cache,
    machine_id: str,
    instrument_id: str,
    instrument: Instrument,
    *,
    author_id: str | None,
    change_note: str = "",
) -> Published:
    """Publish a new version with one instrument replaced."""
    current = await get_published(session, machine_id)
    if current.document.instrument(instrument_id) is None:
        raise InstrumentNotFound()
    if instrument.id != instrument_id and current.document.instrument(instrument.id) is not None:
        raise InstrumentExists()
    instruments = [instrument if i.id == instrument_id else i for i in current.document.instruments]
    document = current.document.model_copy(update={"instruments": instruments})
    note = change_note or f"Edit instrument {instrument_id}"
    return (await _republish(session, cache, document, author_id, note)).published


async def remove_instrument(
    session: AsyncSession,
    cache: Cache,
    machine_id: str,
    instrument_id: str,
    *,
    author_id: str | None,
    change_note: str = "",
) -> Published:
    """Publish a new version without one instrument."""
    current = await get_published(session, machine_id)
    if current.document.instrument(instrument_id) is None:
        raise InstrumentNotFound()
    instruments = [i for i in current.document.instruments if i.id != instrument_id]
    document = current.document.model_copy(update={"instruments": instruments})
    note = change_note or f"Remove instrument {instrument_id}"
    return (await _republish(session, cache, document, author_id, note)).published


async def _republish(
    session: AsyncSession,
    cache: Cache,
    document: MachineDocument,
    author_id: str | None,
    change_note: str,
) -> PublishResult:
    # Re-validate the whole document: an edit must leave a machine the front end can load.
    checked = MachineDocument.model_validate(document.model_dump())
    return await publish(
        session, cache, checked, author_id=author_id, change_note=change_note, create=False
    )


# --- questions other domains ask ----------------------------------------------------


async def known_flavors(session: AsyncSession) -> list[str]:
    """The flavors of the machines served, sorted."""
    return list((await session.execute(select(Machine.flavor).order_by(Machine.flavor))).scalars())


async def machine_for_flavor(session: AsyncSession, flavor: str) -> Published | None:
    """The current published machine of a flavor (`Salsa`), or None."""
    machine_id = (
        await session.execute(select(Machine.id).where(Machine.flavor == flavor))
    ).scalar_one_or_none()
    return None if machine_id is None else await get_published(session, machine_id)


@dataclass(frozen=True)
class InstrumentChoice:
    """What a saved pattern says about one instrument."""

    id: str
    active_program: int


@dataclass(frozen=True)
class ValidatedAgainst:
    machine_id: str
    version: int


async def validate_choices(
    session: AsyncSession, flavor: str, choices: Sequence[InstrumentChoice], field_prefix: str
) -> ValidatedAgainst:
    """Check that every instrument exists in the flavor's machine and every program index
    is one of its programs; returns the machine version checked against."""
    published = await machine_for_flavor(session, flavor)
    if published is None:
        flavors = ", ".join(await known_flavors(session))
        raise ValidationFailed(
            f"No machine plays the flavor {flavor!r}.",
            details={
                "fields": [
                    {"field": "flavor", "message": f"must be one of {flavors}", "type": "enum"}
                ]
            },
        )
    problems = []
    for position, choice in enumerate(choices):
        instrument = published.document.instrument(choice.id)
        where = f"{field_prefix}.{position}"
        if instrument is None:
            problems.append(
                {
                    "field": f"{where}.id",
                    "message": f"{flavor} has no instrument {choice.id!r}",
                    "type": "unknown_instrument",
                }
            )
        elif not 0 <= choice.active_program < max(1, len(instrument.programs)):
            problems.append(
                {
                    "field": f"{where}.activeProgram",
                    "message": f"{choice.id} has {len(instrument.programs)} programs",
                    "type": "out_of_range",
                }
            )
    if problems:
        raise ValidationFailed(
            f"The configuration does not fit the {flavor} machine.", details={"fields": problems}
        )
    return ValidatedAgainst(published.machine.id, published.version.version)


# --- pre-serialised documents ----------------------------------------------------------


async def compressed(cache: Cache, memo: Cache, document: Rendered, encoding: Encoding) -> bytes:
    """`document`'s body in `encoding`, compressed once per version and then cached like
    the plain bytes. Filed under the ETag, which names the content: a compression that
    finishes after a publish can never be served for another version."""
    key = f"machines:compressed:{encoding}:{document.etag}"
    body = await rendered.read_through(cache, memo, key, CACHE_TTL_SECONDS)
    if body is None:
        body = await anyio.to_thread.run_sync(compress, document.body, encoding)
        await rendered.keep(cache, memo, key, body, CACHE_TTL_SECONDS)
    return body


async def rendered_document(
    sessionmaker: async_sessionmaker[AsyncSession],
    cache: Cache,
    memo: Cache,
    machine_id: str,
    representation: str,
) -> Rendered:
    """The current version of a machine as ready-to-send bytes (`json` envelope or `xml`),
    from the cache when possible (reads vastly outnumber publishes); the database is
    opened only on a miss."""
    key = document_cache_key(
        await cache.generation(GENERATION).current(), machine_id, representation
    )
    hit = await rendered.cached(cache, memo, key, CACHE_TTL_SECONDS)
    if hit is not None:
        return hit
    async with sessionmaker() as session:
        published = await get_published(session, machine_id)
    if representation == "xml":
        body = await anyio.to_thread.run_sync(machine_to_xml, published.document)
    else:
        data = published.document.model_dump(mode="json", by_alias=True)
        data["version"] = published.version.version
        body = orjson.dumps({"success": True, "data": data})
    # Weak: the same entity is sent plain, gzip or brotli.
    etag = version_etag(published.version.content_hash, published.version.version, representation)
    return await rendered.store(cache, memo, key, Rendered(body=body, etag=etag), CACHE_TTL_SECONDS)


async def rendered_list(
    sessionmaker: async_sessionmaker[AsyncSession], cache: Cache, memo: Cache
) -> Rendered:
    """The list of machines as ready bytes, from the cache when possible."""
    key = list_cache_key(await cache.generation(GENERATION).current())
    hit = await rendered.cached(cache, memo, key, CACHE_TTL_SECONDS)
    if hit is not None:
        return hit
    async with sessionmaker() as session:
        rows = await list_machines(session)
    machines = [
        {
            "id": m.id,
            "title": m.title,
            "flavor": m.flavor,
            "description": m.description,
            "currentVersion": m.current_version,
        }
        for m in rows
    ]
    body = orjson.dumps({"success": True, "data": {"machines": machines}})
    return await rendered.store(
        cache, memo, key, Rendered(body=body, etag=weak_etag(body)), CACHE_TTL_SECONDS
    )
