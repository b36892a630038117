"""Avatars: images checked and re-encoded as squares, stored as public files, and the
profile's `avatar` set to the URL of the default size.

- An upload or a data URL is taken in the request: checked and re-encoded
  (`core.images`), stored under a new key, then the profile points at it.
- An image URL is fetched by a job through the outbound guard (public addresses only,
  timeouts, a size limit, no redirects), then taken like an upload; until then the
  profile keeps its avatar and says the URL is pending (or why it failed).
- The files of the avatar that was replaced or removed are deleted by a job queued in
  the same transaction (so never before the change is committed, and never forgotten);
  the files stored for a change that rolls back are deleted after the rollback.
- Inline avatars of before (moved aside by migration 0013) are stored by a periodic job.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.config import Settings
from beatmachine.core.db import after_rollback, transaction
from beatmachine.core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from beatmachine.core.ids import utcnow
from beatmachine.core.images import ImageLimits, ImageRefused, SquareRenditions, square_renditions
from beatmachine.core.jobs import JobQueue
from beatmachine.core.outbound import OutboundClient, OutboundError, parse_networks
from beatmachine.core.state import AppState
from beatmachine.core.storage import Storage
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


@dataclass(frozen=True)
class AvatarFetch:
    """An image URL given as avatar: `pending` while the job fetches it, else `failed`
    with the reason."""

    url: str
    status: str
    error: str | None


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
    """The declared type and the bytes of a `data:image/...;base64,` URL that the schema
    has already checked."""
    header, payload = data_url.split(",", 1)
    return header.removeprefix("data:").split(";", 1)[0], base64.b64decode(payload)


def _file_key(key: str, size: int) -> str:
    return f"{key}/{size}.webp"


async def _store(storage: Storage, user_id: str, renditions: SquareRenditions) -> str:
    """Every rendition under a new key; on a failure half-way, what was stored goes again."""
    key = f"avatars/{user_id}/{secrets.token_hex(8)}"
    stored: list[str] = []
    try:
        for size, body in renditions.renditions.items():
            await storage.put(
                _file_key(key, size),
                body,
                content_type=renditions.media_type,
                public=True,
                cache_control=CACHE_CONTROL,
            )
            stored.append(_file_key(key, size))
    except BaseException:
        await _delete_quietly(storage, stored)
        raise
    return key


async def _delete_quietly(storage: Storage, keys: Sequence[str]) -> None:
    for file_key in keys:
        try:
            await storage.delete(file_key)
        except Exception:
            log.warning("avatar_file_left", key=file_key)


async def _locked_key(session: AsyncSession, user_id: str) -> str | None:
    """The user's stored avatar key, read with the row locked (PostgreSQL; SQLite writers
    are one at a time): two changes at once cannot both replace the same old avatar."""
    row = await session.execute(select(User.avatar_key).where(User.id == user_id).with_for_update())
    return row.scalar_one_or_none()


def _remove_later(session: AsyncSession, jobs: JobQueue, key: str | None) -> None:
    if key is not None:
        jobs.enqueue(session, REMOVE_FILES_JOB, key=key)


async def _point_at(
    session: AsyncSession, state: AppState, user: User, renditions: SquareRenditions
) -> None:
    key = await _store(state.storage, user.id, renditions)
    files = [_file_key(key, size) for size in renditions.renditions]
    after_rollback(session, partial(_delete_quietly, state.storage, files))
    url = await state.storage.url(_file_key(key, DEFAULT_SIZE), public=True)
    await _replace(session, state.jobs, user, url, key)


async def _replace(
    session: AsyncSession, jobs: JobQueue, user: User, url: str | None, key: str | None
) -> None:
    """Point the profile at the avatar stored under `key` (None: no avatar), drop any
    pending URL, and queue the removal of the files it pointed at before."""
    old_key = await _locked_key(session, user.id)
    user.avatar = url
    user.avatar_key = key
    user.avatar_source = None
    user.avatar_error = None
    user.updated_at = utcnow()
    _remove_later(session, jobs, old_key)
    await session.flush()


async def set_image(session: AsyncSession, state: AppState, user: User, raw: bytes) -> None:
    """Make the image `raw` (an upload) the user's avatar; refusals as `render` says."""
    await _point_at(session, state, user, await render(raw, state.settings))


async def set_data_url(session: AsyncSession, state: AppState, user: User, data_url: str) -> None:
    """Make the image of a data URL the avatar; its bytes must be the type it declares."""
    declared, raw = decode_data_url(data_url)
    renditions = await render(raw, state.settings)
    if renditions.source_format != _DECLARED_FORMATS[declared]:
        raise UnsupportedMediaType(
            f"The image is a {renditions.source_format} image, not {declared}.",
            details={"field": _FIELD, "message": f"the bytes are not {declared}"},
        )
    await _point_at(session, state, user, renditions)


async def request_fetch(session: AsyncSession, state: AppState, user: User, url: str) -> None:
    """Have the job fetch `url` as the avatar; the current avatar stays meanwhile. A later
    change of the avatar supersedes the fetch."""
    await _locked_key(session, user.id)
    user.avatar_source = url
    user.avatar_error = None
    user.updated_at = utcnow()
    state.jobs.enqueue(session, FETCH_JOB, user_id=user.id, url=url)
    await session.flush()


async def clear(session: AsyncSession, state: AppState, user: User) -> None:
    """Remove the avatar (its files go once this is committed) and any pending URL."""
    await _replace(session, state.jobs, user, None, None)


async def _still_wanted(session: AsyncSession, user_id: str, source: str) -> User | None:
    user = await session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None or user.deletion_scheduled_at is not None or user.avatar_source != source:
        return None
    return user


async def _fail(state: AppState, user_id: str, source: str, reason: str) -> None:
    async with transaction(state.sessionmaker) as session:
        user = await _still_wanted(session, user_id, source)
        if user is not None:
            user.avatar_error = reason[:300]


async def _take(state: AppState, user_id: str, source: str, renditions: SquareRenditions) -> None:
    """Store `renditions` and point the user at them, unless the source was superseded
    meanwhile (then nothing is stored)."""
    async with transaction(state.sessionmaker) as session:
        user = await _still_wanted(session, user_id, source)
        if user is not None:
            await _point_at(session, state, user, renditions)


async def _fetched_image(client: OutboundClient, url: str, settings: Settings) -> bytes | str:
    """The image bytes at `url`, or why there are none."""
    try:
        response = await client.request("GET", url, max_body=settings.avatar_max_bytes)
    except OutboundError as error:
        return f"could not be fetched ({error.kind}: {error})"
    if response.status != 200:
        return f"answered HTTP {response.status}"
    if response.truncated:
        return f"the image is larger than {settings.avatar_max_bytes} bytes"
    if not response.body:
        return "the image is empty"
    return response.body


async def fetch(state: AppState, client: OutboundClient, user_id: str, url: str) -> None:
    """The fetch job: take the image at `url` as the avatar, or record why not. A failure
    of the address is recorded and not retried; a failure of ours (storage, database)
    raises, and the queue runs the job again."""
    async with transaction(state.sessionmaker) as session:
        if await _still_wanted(session, user_id, url) is None:
            return
    image = await _fetched_image(client, url, state.settings)
    if isinstance(image, str):
        await _fail(state, user_id, url, image)
        return
    try:
        renditions = await square_renditions(image, SIZES, image_limits(state.settings))
    except ImageRefused as error:
        await _fail(state, user_id, url, f"the image {error.reason}")
        return
    await _take(state, user_id, url, renditions)


async def remove_files(storage: Storage, key: str) -> None:
    """The removal job: every rendition stored under `key` (missing ones are no error)."""
    for size in SIZES:
        await storage.delete(_file_key(key, size))


async def move_inline(state: AppState) -> int:
    """The periodic job: store a batch of the inline avatars from before (migration 0013)
    and point their profiles at them; an image that cannot be taken is dropped, logged.
    Returns how many were handled."""
    async with transaction(state.sessionmaker) as session:
        rows = await session.execute(
            select(User.id, User.avatar_source)
            .where(User.avatar_source.is_not(None), User.avatar_source.like("data:%"))
            .order_by(User.id)
            .limit(MOVE_INLINE_BATCH)
        )
        waiting = [(user_id, str(source)) for user_id, source in rows.all()]
    for user_id, source in waiting:
        _, raw = decode_data_url(source)
        try:
            renditions = await square_renditions(raw, SIZES, image_limits(state.settings))
        except ImageRefused as error:
            log.warning("inline_avatar_dropped", user_id=user_id, reason=error.reason)
            async with transaction(state.sessionmaker) as session:
                user = await _still_wanted(session, user_id, source)
                if user is not None:
                    user.avatar_source = None
            continue
        await _take(state, user_id, source, renditions)
    return len(waiting)


async def forget(jobs: JobQueue, session: AsyncSession, user_ids: list[str]) -> None:
    """Before accounts are purged: queue the removal of their avatars' files."""
    rows = await session.execute(
        select(User.avatar_key).where(User.id.in_(user_ids), User.avatar_key.is_not(None))
    )
    for key in rows.scalars():
        _remove_later(session, jobs, key)
