"""Users' audio samples: upload, conversion to the working form, and their keeping.

- An upload is spooled to a temporary file as it arrives (never wholly in memory), then
  checked (`inspection`): nothing of a refused file is stored. An accepted one is
  streamed to storage under `samples/<owner>/<sample>/original` (private), with no
  database connection held, and then recorded, `pending`, under a lock of the owner's
  row that makes the quota and name checks exact; the conversion job is queued with it.
- The conversion job (`CONVERT_JOB`) makes the working form (`conversion`) and its
  preview, stores both and marks the sample `ready`, or `failed` with the reason; a
  failed sample can be queued again (`retry`).
- Deleting a sample (or purging its owner) queues the removal of its files in the same
  transaction, so they go once the row is gone and never before.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core import ffmpeg
from beatmachine.core.config import Settings
from beatmachine.core.db import after_rollback, release_connection, transaction
from beatmachine.core.errors import (
    AppError,
    AuthRequired,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.jobs import JobQueue
from beatmachine.core.pagination import PageParams, Pagination, paginate
from beatmachine.core.state import AppState
from beatmachine.core.storage import CHUNK_SIZE, Storage, StorageObjectNotFound
from beatmachine.core.uploads import SpooledFile
from beatmachine.media import conversion
from beatmachine.media.exceptions import (
    NotRetryable,
    QuotaExceeded,
    SampleNameTaken,
    SampleNotFound,
)
from beatmachine.media.inspection import AudioLimits, AudioRefused, Refusal, inspect, kind_named
from beatmachine.media.models import Sample
from beatmachine.media.schemas import validate_sample_name
from beatmachine.users.models import User

log = structlog.get_logger(__name__)

CONVERT_JOB = "media.convert_sample"
REMOVE_FILES_JOB = "media.remove_sample_files"
ORIGINAL = "original"
WORKING_FORM = "work.wav"
PREVIEW = "preview.mp3"
FILES = (ORIGINAL, WORKING_FORM, PREVIEW)
_MEDIA_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "mp3": "audio/mpeg",
    "webm": "audio/webm",
}
# How the owner is told of a conversion that went over its time.
_TOO_SLOW = "the conversion took too long"


@dataclass(frozen=True)
class Usage:
    """Bytes the account keeps in samples, and its quota."""

    used_bytes: int
    limit_bytes: int


def audio_limits(settings: Settings) -> AudioLimits:
    """What an uploaded sample may be (`SAMPLE_MAX_SECONDS`, `SAMPLE_FFMPEG_TIME_LIMIT`)."""
    return AudioLimits(
        max_seconds=settings.sample_max_seconds, time_limit=settings.sample_ffmpeg_time_limit
    )


def _refusal(error: AudioRefused, settings: Settings) -> AppError:
    message = f"The file {error.reason}."
    if error.kind is Refusal.BUSY:
        return ServiceUnavailable(f"The file {error.reason}; try again later.")
    if error.kind is Refusal.UNSUPPORTED:
        return UnsupportedMediaType(
            message, details={"field": "file", "message": f"the file {error.reason}"}
        )
    if error.kind is Refusal.TOO_LARGE:
        return PayloadTooLarge(
            message,
            details={
                "field": "file",
                "message": f"the file {error.reason}",
                "maxSeconds": settings.sample_max_seconds,
            },
        )
    return ValidationFailed(
        message,
        details={
            "fields": [{"field": "file", "message": f"the file {error.reason}", "type": "audio"}]
        },
    )


def _name_error(message: str) -> ValidationFailed:
    return ValidationFailed(
        details={"fields": [{"field": "name", "message": message, "type": "name"}]}
    )


def resolve_name(given: str | None, filename: str) -> str:
    """The sample's name: the one given, else the file name without its extension."""
    name = (given if given is not None else Path(filename).stem).strip()
    try:
        return validate_sample_name(name)
    except ValueError as exc:
        raise _name_error(str(exc)) from None


async def usage(session: AsyncSession, settings: Settings, owner_id: str) -> Usage:
    """What the account keeps in samples, against `SAMPLE_QUOTA_BYTES`."""
    used = await session.scalar(
        select(func.coalesce(func.sum(Sample.stored_bytes), 0)).where(Sample.owner_id == owner_id)
    )
    return Usage(used_bytes=int(used or 0), limit_bytes=settings.sample_quota_bytes)


async def _check_room(
    session: AsyncSession, settings: Settings, owner_id: str, name: str, size: int
) -> None:
    taken = await session.scalar(
        select(Sample.id).where(Sample.owner_id == owner_id, Sample.name == name)
    )
    if taken is not None:
        raise SampleNameTaken(details={"name": name})
    room = await usage(session, settings, owner_id)
    if room.used_bytes + size > room.limit_bytes:
        raise QuotaExceeded(
            details={
                "usedBytes": room.used_bytes,
                "limitBytes": room.limit_bytes,
                "sizeBytes": size,
            }
        )


@contextlib.asynccontextmanager
async def _temporary_folder() -> AsyncIterator[Path]:
    folder = Path(await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix="sample-")))
    try:
        yield folder
    finally:
        await anyio.to_thread.run_sync(partial(shutil.rmtree, folder, ignore_errors=True))


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as source:
        while chunk := await source.read(CHUNK_SIZE):
            yield chunk


async def _remove_files(storage: Storage, key: str, names: Sequence[str] = FILES) -> None:
    for name in names:
        await storage.delete(f"{key}/{name}")


async def _remove_quietly(state: AppState, key: str) -> None:
    """Remove a sample's files now; when storage fails, queue the job to do it later."""
    try:
        await _remove_files(state.storage, key)
    except Exception:
        log.warning("sample_files_left_for_the_job", key=key)
        with contextlib.suppress(Exception):
            async with transaction(state.sessionmaker) as session:
                state.jobs.enqueue(session, REMOVE_FILES_JOB, key=key)


async def add_sample(
    session: AsyncSession, state: AppState, owner: User, upload: SpooledFile
) -> Sample:
    """Check the spooled upload, store it and record the sample, `pending` its
    conversion (see the module). The name is the upload's `name` field, else its file
    name's stem."""
    settings = state.settings
    name = resolve_name(upload.fields.get("name"), upload.filename)
    try:
        audio = await inspect(
            upload.path,
            filename=upload.filename,
            declared_type=upload.content_type,
            limits=audio_limits(settings),
        )
    except AudioRefused as error:
        raise _refusal(error, settings) from None
    await _check_room(session, settings, owner.id, name, upload.size)
    sample_id = new_id("smp")
    key = f"samples/{owner.id}/{sample_id}"
    await release_connection(session)  # nothing is held while the file goes to storage
    # Registered first: a put that stored the file and still failed leaves nothing.
    after_rollback(session, partial(_remove_quietly, state, key))
    await state.storage.put(
        f"{key}/{ORIGINAL}",
        _file_chunks(upload.path),
        content_type=_MEDIA_TYPES[audio.kind.name],
        public=False,
    )
    # Again under the owner's lock: two uploads at once cannot both take the last room.
    await _lock_owner(session, owner.id)
    await _check_room(session, settings, owner.id, name, upload.size)
    sample = Sample(
        id=sample_id,
        owner_id=owner.id,
        name=name,
        status="pending",
        original_filename=upload.filename[:255],
        original_format=audio.kind.name,
        original_codec=audio.codec,
        original_bytes=upload.size,
        original_duration=round(audio.duration, 3),
        storage_key=key,
        stored_bytes=upload.size,
        conversion_attempts=0,
    )
    session.add(sample)
    state.jobs.enqueue(session, CONVERT_JOB, sample_id=sample_id)
    await _flush_name(session, name)
    return sample


async def _lock_owner(session: AsyncSession, owner_id: str) -> None:
    """Lock the owner's row: uploads and renames of one account take turns. An account
    removed meanwhile (purged) is signed out."""
    locked = await session.execute(select(User.id).where(User.id == owner_id).with_for_update())
    if locked.scalar_one_or_none() is None:
        raise AuthRequired()


async def _flush_name(session: AsyncSession, name: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # the same name taken at the same moment
        raise SampleNameTaken(details={"name": name}) from None


async def get_sample(session: AsyncSession, owner_id: str, sample_id: str) -> Sample:
    """The owner's sample, or `SampleNotFound` (also for someone else's)."""
    sample = await session.get(Sample, sample_id)
    if sample is None or sample.owner_id != owner_id:
        raise SampleNotFound()
    return sample


async def list_samples(
    session: AsyncSession, owner_id: str, params: PageParams
) -> tuple[list[Sample], Pagination]:
    """A page of the owner's samples, newest first."""
    statement = (
        select(Sample)
        .where(Sample.owner_id == owner_id)
        .order_by(Sample.created_at.desc(), Sample.id.desc())
    )
    return await paginate(session, statement, params)


async def rename(session: AsyncSession, owner_id: str, sample_id: str, name: str) -> Sample:
    """Give the owner's sample another name (unique among theirs)."""
    sample = await get_sample(session, owner_id, sample_id)
    if name == sample.name:
        return sample
    await _lock_owner(session, owner_id)
    taken = await session.scalar(
        select(Sample.id).where(Sample.owner_id == owner_id, Sample.name == name)
    )
    if taken is not None:
        raise SampleNameTaken(details={"name": name})
    sample.name = name
    sample.updated_at = utcnow()
    await _flush_name(session, name)
    return sample


async def delete(session: AsyncSession, jobs: JobQueue, owner_id: str, sample_id: str) -> None:
    """Delete the owner's sample; its files go once this is committed."""
    sample = await get_sample(session, owner_id, sample_id)
    jobs.enqueue(session, REMOVE_FILES_JOB, key=sample.storage_key)
    await session.delete(sample)
    await session.flush()


async def retry(session: AsyncSession, jobs: JobQueue, owner_id: str, sample_id: str) -> Sample:
    """Queue the conversion of a `failed` sample again."""
    sample = await get_sample(session, owner_id, sample_id)
    # Conditional: of two retries at once, one queues the conversion.
    changed = await session.execute(
        update(Sample)
        .where(Sample.id == sample.id, Sample.status == "failed")
        .values(status="pending", error=None, updated_at=utcnow())
    )
    if getattr(changed, "rowcount", 0) != 1:
        await session.refresh(sample)
        raise NotRetryable(details={"status": sample.status})
    await session.refresh(sample)
    jobs.enqueue(session, CONVERT_JOB, sample_id=sample.id)
    return sample


async def preview_url(storage: Storage, sample: Sample) -> str | None:
    """A signed link to the preview of a `ready` sample."""
    if sample.status != "ready":
        return None
    return await storage.url(f"{sample.storage_key}/{PREVIEW}", public=False)


async def _claim(state: AppState, sample_id: str) -> Sample | None:
    """Take the sample for one conversion run; its `conversion_attempts` after this names
    the run (a run that is no longer the latest records nothing)."""
    async with transaction(state.sessionmaker) as session:
        sample = await session.get(Sample, sample_id, with_for_update=True)
        # `processing`: a run whose worker died is run again.
        if sample is None or sample.status not in ("pending", "processing"):
            return None
        sample.status = "processing"
        sample.conversion_attempts += 1
        sample.updated_at = utcnow()
        return sample


async def _finish(
    state: AppState,
    claimed: Sample,
    *,
    error: str | None,
    form: conversion.WorkingForm | None,
) -> bool:
    """Record the outcome of the run that claimed `claimed`; False when the sample was
    deleted meanwhile. A run that is no longer the latest changes nothing (its files are
    the same as the latest run's, made from the same original)."""
    async with transaction(state.sessionmaker) as session:
        sample = await session.get(Sample, claimed.id, with_for_update=True)
        if sample is None:
            return False
        if (sample.status, sample.conversion_attempts) != (
            "processing",
            claimed.conversion_attempts,
        ):
            return True
        sample.updated_at = utcnow()
        if form is None:
            sample.status, sample.error = "failed", error
            return True
        sample.status, sample.error = "ready", None
        sample.length_samples = form.length
        sample.loudness_lufs = form.loudness.integrated
        sample.true_peak_dbtp = form.loudness.true_peak
        sample.gain_db = form.gain_db
        sample.stored_bytes = sample.original_bytes + len(form.wav) + len(form.preview)
        return True


async def convert(state: AppState, sample_id: str) -> None:
    """The conversion job (see the module). A failure of the sound is recorded as
    `failed`; a failure of ours (storage, database) raises, and the queue runs the job
    again."""
    sample = await _claim(state, sample_id)
    if sample is None:
        return
    settings = state.settings
    async with _temporary_folder() as folder:
        original = folder / ORIGINAL
        try:
            stream = await state.storage.open(f"{sample.storage_key}/{ORIGINAL}")
        except StorageObjectNotFound:
            await _finish(state, sample, error="the uploaded file is gone", form=None)
            return
        async with stream, await anyio.open_file(original, "wb") as out:
            async for chunk in stream:
                await out.write(chunk)
        try:
            form = await conversion.convert(
                str(original),
                formats=kind_named(sample.original_format).formats,
                max_seconds=settings.sample_max_seconds,
                time_limit=settings.sample_ffmpeg_time_limit,
            )
        except conversion.ConversionFailed as failed:
            await _finish(state, sample, error=failed.reason, form=None)
            return
        except ffmpeg.FfmpegTimedOut:
            await _finish(state, sample, error=_TOO_SLOW, form=None)
            return
    key = sample.storage_key
    await state.storage.put(
        f"{key}/{WORKING_FORM}", form.wav, content_type="audio/wav", public=False
    )
    await state.storage.put(
        f"{key}/{PREVIEW}", form.preview, content_type="audio/mpeg", public=False
    )
    if not await _finish(state, sample, error=None, form=form):
        await _remove_quietly(state, key)


async def remove_files(state: AppState, key: str) -> None:
    """The removal job: a deleted sample's files (missing ones are no error)."""
    await _remove_files(state.storage, key)


async def forget(jobs: JobQueue, session: AsyncSession, user_ids: list[str]) -> None:
    """Before accounts are purged: queue the removal of their samples' files."""
    keys = await session.scalars(select(Sample.storage_key).where(Sample.owner_id.in_(user_ids)))
    for key in keys:
        jobs.enqueue(session, REMOVE_FILES_JOB, key=key)
