"""Avatars: images checked and re-encoded as squares, stored as public files, and the
profile's `avatar` set to the URL of the default size.

- An upload or a data URL is taken in the request: checked and re-encoded
  (`core.images`) and stored under a new key with no database connection held (`store`),
  then the profile points at it under a row lock (`point`).
- An image URL is fetched by a job through the outbound guard (public addresses only,
  timeouts, a size limit, no redirects), then taken like an upload; until then the
  profile keeps its avatar and says the URL is pending (or why it failed).
- Files no profile points at are removed by the job `REMOVE_FILES_JOB`, which checks
  first that the key is not the owner's current avatar (so it is safe to queue whenever
  in doubt). It is queued in the transaction that replaces or removes an avatar, and for
  the files of a change that did not commit when removing them at once fails.
- Inline avatars of before (moved aside by migration 0013) are stored by a periodic job.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from functools import partial

import anyio
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload

from beatmachine.core.config import Settings
from beatmachine.core.db import after_rollback, release_connection, transaction
from beatmachine.core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.images import ImageLimits, ImageRefused, SquareRenditions, square_renditions
from beatmachine.core.jobs import JobQueue
from beatmachine.core.outbound import (
    OutboundClient,
    OutboundError,
    OutboundRefused,
    OutboundTimeout,
    check_url,
    parse_networks,
)
from beatmachine.core.state import AppState
from beatmachine.users.models import User

log = structlog.get_logger(__name__)

SIZES = (64, 256, 512)
DEFAULT_SIZE = 256
# A stored avatar's files never change (a new avatar gets a new key).
CACHE_CONTROL = "public, max-age=31536000, immutable"
FETCH_JOB = "users.fetch_avatar"
REMOVE_FILES_JOB = "users.remove_avatar_files"
USER_AGENT = "BeatMachine-Avatars/1.0"
MOVE_INLINE_EVERY_SECONDS = 600
MOVE_INLINE_BATCH = 20
_DECLARED_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
_FIELD = "avatar"
# What the owner is told of an address that could not be fetched: the kind of failure,
# never the details (they would tell what internal names resolve to).
_FETCH_FAILURES = {
    OutboundRefused.kind: "is not an address avatars may be fetched from",
    OutboundTimeout.kind: "did not answer in time",
}
_FETCH_FAILED = "could not be reached"


@dataclass(frozen=True)
class AvatarFetch:
    """An image URL given as avatar: `pending` while the job fetches it, else `failed`
    with the reason."""

    url: str
    status: str
    error: str | None


@dataclass(frozen=True)
class StoredAvatar:
    """Renditions stored under `key`, not pointed at yet; `url` is the default size's."""

    key: str
    url: str


def pending_fetch(user: User) -> AvatarFetch | None:
    """The avatar URL the owner gave that is not the avatar yet, if any."""
    source = user.avatar_source
    if source is None or not source.startswith(("https://", "http://")):
        return None
    if user.avatar_error is None:
        return AvatarFetch(url=source, status="pending", error=None)
    return AvatarFetch(url=source, status="failed", error=user.avatar_error)


def image_limits(settings: Settings) -> ImageLimits:
    """The byte and pixel limits of an avatar image (`AVATAR_MAX_BYTES`, `AVATAR_MAX_PIXELS`)."""
    return ImageLimits(max_bytes=settings.avatar_max_bytes, max_pixels=settings.avatar_max_pixels)


def outbound_client(settings: Settings) -> OutboundClient:
    """The guarded HTTP client avatar URLs are fetched through (one per process)."""
    return OutboundClient(
        user_agent=USER_AGENT,
        connect_timeout=settings.avatar_fetch_timeout,
        read_timeout=settings.avatar_fetch_timeout,
        allowed_networks=parse_networks(settings.outbound_allowed_networks),
    )


def _refusal(error: ImageRefused, settings: Settings) -> Exception:
    message = f"The image {error.reason}."
    field = {"field": _FIELD, "message": f"the image {error.reason}"}
    if error.too_large:
        return PayloadTooLarge(
            message,
            details={
                **field,
                "maxBytes": settings.avatar_max_bytes,
                "maxPixels": settings.avatar_max_pixels,
            },
        )
    if error.reason == "is damaged or incomplete":
        return ValidationFailed(message, details={"fields": [{**field, "type": "image"}]})
    return UnsupportedMediaType(message, details=field)


async def render(raw: bytes, settings: Settings) -> SquareRenditions:
    """`raw` checked and re-encoded as the avatar's squares; a refusal is the error the
    client gets (413 too large, 415 not an accepted image, 422 damaged)."""
    try:
        return await square_renditions(raw, SIZES, image_limits(settings))
    except ImageRefused as error:
        raise _refusal(error, settings) from None


def decode_data_url(data_url: str) -> tuple[str, bytes]:
    """The declared type and the bytes of a `data:image/...;base64,` URL; `ValueError`
    when it is not one."""
    header, payload = data_url.split(",", 1)
    try:
        raw = base64.b64decode("".join(payload.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc
    return header.removeprefix("data:").split(";", 1)[0], raw


def _file_key(key: str, size: int) -> str:
    return f"{key}/{size}.webp"


def _owner_of(key: str) -> str:
    return key.split("/")[1]


async def store(state: AppState, user_id: str, renditions: SquareRenditions) -> StoredAvatar:
    """Every rendition under a new key (no database connection is used); on a failure
    half-way, what was stored is reclaimed."""
    key = f"avatars/{user_id}/{secrets.token_hex(8)}"
    try:
        for size, body in renditions.renditions.items():
            await state.storage.put(
                _file_key(key, size),
                body,
                content_type=renditions.media_type,
                public=True,
                cache_control=CACHE_CONTROL,
            )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await reclaim(state, key)
        raise
    return StoredAvatar(key, await state.storage.url(_file_key(key, DEFAULT_SIZE), public=True))


async def reclaim(state: AppState, key: str) -> None:
    """Remove the files under `key` now unless they are the owner's avatar; if storage
    fails, the removal job is queued to do it later (never an error for the caller)."""
    try:
        await remove_files(state, key)
    except Exception:
        log.warning("avatar_files_left_for_the_job", key=key)
        try:
            async with transaction(state.sessionmaker) as session:
                state.jobs.enqueue(session, REMOVE_FILES_JOB, key=key)
        except Exception:
            log.exception("avatar_files_left", key=key)


async def _locked_key(session: AsyncSession, user_id: str) -> str | None:
    """The user's stored avatar key, read with the row locked (PostgreSQL; SQLite writers
    are one at a time): two changes at once cannot both replace the same old avatar."""
    row = await session.execute(select(User.avatar_key).where(User.id == user_id).with_for_update())
    return row.scalar_one_or_none()


def _remove_later(session: AsyncSession, jobs: JobQueue, key: str | None) -> None:
    if key is not None:
        jobs.enqueue(session, REMOVE_FILES_JOB, key=key)


async def point(
    session: AsyncSession, state: AppState, user: User, stored: StoredAvatar | None
) -> None:
    """Make `stored` (None: no avatar) the user's avatar, drop any pending URL, and queue
    the removal of the files it pointed at before. Should the transaction roll back, the
    new files are reclaimed."""
    if stored is not None:
        after_rollback(session, partial(reclaim, state, stored.key))
    old_key = await _locked_key(session, user.id)
    user.avatar = None if stored is None else stored.url
    user.avatar_key = None if stored is None else stored.key
    user.avatar_source = None
    user.avatar_error = None
    user.avatar_fetch_id = None
    user.updated_at = utcnow()
    _remove_later(session, state.jobs, old_key)
    await session.flush()


async def set_image(session: AsyncSession, state: AppState, user: User, raw: bytes) -> None:
    """Make the image `raw` (an upload) the user's avatar; refusals as `render` says."""
    await release_connection(session)
    stored = await store(state, user.id, await render(raw, state.settings))
    await point(session, state, user, stored)


async def store_data_url(state: AppState, user: User, data_url: str) -> StoredAvatar:
    """The image of a data URL, checked and stored (its bytes must be the type it
    declares); `point` makes it the avatar."""
    declared, raw = decode_data_url(data_url)
    renditions = await render(raw, state.settings)
    if renditions.source_format != _DECLARED_FORMATS[declared]:
        raise UnsupportedMediaType(
            f"The image is a {renditions.source_format} image, not {declared}.",
            details={"field": _FIELD, "message": f"the bytes are not {declared}"},
        )
    return await store(state, user.id, renditions)


async def request_fetch(session: AsyncSession, state: AppState, user: User, url: str) -> None:
    """Have the job fetch `url` as the avatar; the current avatar stays meanwhile. A later
    change of the avatar supersedes the fetch. A URL whose host is a refused address
    (`http://127.0.0.1/…`) is refused at once."""
    try:
        check_url(url, parse_networks(state.settings.outbound_allowed_networks))
    except OutboundRefused as exc:
        raise ValidationFailed(
            details={"fields": [{"field": _FIELD, "message": str(exc), "type": "url"}]}
        ) from None
    await _locked_key(session, user.id)
    user.avatar_source = url
    user.avatar_error = None
    user.avatar_fetch_id = new_id("avf")
    user.updated_at = utcnow()
    state.jobs.enqueue(session, FETCH_JOB, user_id=user.id, fetch_id=user.avatar_fetch_id)
    await session.flush()


async def clear(session: AsyncSession, state: AppState, user: User) -> None:
    """Remove the avatar (its files go once this is committed) and any pending URL."""
    await point(session, state, user, None)


async def _wanted(session: AsyncSession, user_id: str, fetch_id: str | None) -> User | None:
    """The user, locked, if the fetch `fetch_id` (None: the inline avatar) is still what
    their profile waits for."""
    user = (
        await session.execute(
            select(User)
            .where(User.id == user_id)
            .options(lazyload(User.preferences))
            .with_for_update(of=User)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if user is None or user.deletion_scheduled_at is not None or user.avatar_source is None:
        return None
    return user if user.avatar_fetch_id == fetch_id else None


async def _fail(state: AppState, user_id: str, fetch_id: str, reason: str) -> None:
    async with transaction(state.sessionmaker) as session:
        user = await _wanted(session, user_id, fetch_id)
        if user is not None:
            user.avatar_error = reason[:300]


async def _take(
    state: AppState, user_id: str, fetch_id: str | None, renditions: SquareRenditions
) -> None:
    """Store `renditions` (no transaction open meanwhile), then point the user at them if
    what they wait for is still this; else the new files are reclaimed."""
    stored = await store(state, user_id, renditions)
    taken = False
    async with transaction(state.sessionmaker) as session:
        user = await _wanted(session, user_id, fetch_id)
        if user is not None:
            await point(session, state, user, stored)
            taken = True
    if not taken:
        await reclaim(state, stored.key)


async def _fetched_image(
    client: OutboundClient, url: str, settings: Settings, user_id: str
) -> bytes | str:
    """The image bytes at `url`, or why there are none (as the owner is told)."""
    try:
        response = await client.request("GET", url, max_body=settings.avatar_max_bytes)
    except OutboundError as error:
        log.info("avatar_fetch_failed", user_id=user_id, kind=error.kind, detail=str(error))
        return _FETCH_FAILURES.get(error.kind, _FETCH_FAILED)
    if response.status != 200:
        return f"answered HTTP {response.status}"
    if response.truncated:
        return f"the image is larger than {settings.avatar_max_bytes} bytes"
    if not response.body:
        return "the image is empty"
    return response.body


async def fetch(state: AppState, client: OutboundClient, user_id: str, fetch_id: str) -> None:
    """The fetch job: take the image at the URL the profile waits for as the avatar, or
    record why not. A failure of the address is recorded and not retried; a failure of
    ours (storage, database) raises, and the queue runs the job again."""
    async with transaction(state.sessionmaker) as session:
        user = await _wanted(session, user_id, fetch_id)
        url = None if user is None else user.avatar_source
    if url is None:
        return
    image = await _fetched_image(client, url, state.settings, user_id)
    if isinstance(image, str):
        await _fail(state, user_id, fetch_id, image)
        return
    try:
        renditions = await square_renditions(image, SIZES, image_limits(state.settings))
    except ImageRefused as error:
        await _fail(state, user_id, fetch_id, f"the image {error.reason}")
        return
    await _take(state, user_id, fetch_id, renditions)


async def remove_files(state: AppState, key: str) -> None:
    """The removal job: every rendition under `key`, unless the owner's profile points at
    it (missing files are no error)."""
    async with transaction(state.sessionmaker) as session:
        current = await session.scalar(select(User.avatar_key).where(User.id == _owner_of(key)))
    if current == key:
        return
    for size in SIZES:
        await state.storage.delete(_file_key(key, size))


async def move_inline(state: AppState) -> int:
    """The periodic job: store the inline avatars from before (migration 0013), a batch
    at a time, and point their profiles at them; an image that cannot be taken is
    dropped, logged. Returns how many were handled."""
    handled = 0
    after = ""
    while True:
        async with transaction(state.sessionmaker) as session:
            rows = await session.execute(
                select(User.id, User.avatar_source)
                .where(
                    User.avatar_source.is_not(None),
                    User.avatar_source.like("data:%"),
                    User.deletion_scheduled_at.is_(None),
                    User.id > after,
                )
                .order_by(User.id)
                .limit(MOVE_INLINE_BATCH)
            )
            waiting = [(user_id, str(source)) for user_id, source in rows.all()]
        for user_id, source in waiting:
            await _move_one(state, user_id, source)
        handled += len(waiting)
        if len(waiting) < MOVE_INLINE_BATCH:
            return handled
        after = waiting[-1][0]


async def _move_one(state: AppState, user_id: str, source: str) -> None:
    try:
        _, raw = decode_data_url(source)
        renditions = await square_renditions(raw, SIZES, image_limits(state.settings))
    except (ValueError, ImageRefused) as error:
        log.warning("inline_avatar_dropped", user_id=user_id, reason=str(error))
        async with transaction(state.sessionmaker) as session:
            user = await _wanted(session, user_id, None)
            if user is not None and user.avatar_source == source:
                user.avatar_source = None
        return
    await _take(state, user_id, None, renditions)


async def forget(jobs: JobQueue, session: AsyncSession, user_ids: list[str]) -> None:
    """Before accounts are purged: queue the removal of their avatars' files."""
    rows = await session.execute(
        select(User.avatar_key).where(User.id.in_(user_ids), User.avatar_key.is_not(None))
    )
    for key in rows.scalars():
        _remove_later(session, jobs, key)
