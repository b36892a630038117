"""HTTP routes of the media domain: one's audio samples."""

from __future__ import annotations

from fastapi import APIRouter, Request

from beatmachine.auth.dependencies import CurrentUser
from beatmachine.core.db import SessionDep, release_connection
from beatmachine.core.pagination import PageDep
from beatmachine.core.schemas import Envelope, error_responses, ok
from beatmachine.core.state import AppState, StateDep
from beatmachine.core.uploads import multipart_request_body, spooled
from beatmachine.media import samples
from beatmachine.media.models import NAME_MAX, Sample
from beatmachine.media.schemas import Quota, SampleDeleted, SampleList, SampleOut, SampleRename

router = APIRouter(prefix="/media", tags=["media"])

SAMPLE_UPLOAD_PATH = "/api/media/samples"
FILE_FIELD = "file"
_UPLOAD_BODY = multipart_request_body(FILE_FIELD, name=NAME_MAX)


async def _out(state: AppState, sample: Sample) -> SampleOut:
    return SampleOut(
        id=sample.id,
        name=sample.name,
        status=sample.status,
        error=sample.error,
        original_filename=sample.original_filename,
        format=sample.original_format,
        codec=sample.original_codec,
        size_bytes=sample.original_bytes,
        duration_seconds=sample.original_duration,
        stored_bytes=sample.stored_bytes,
        length_samples=sample.length_samples,
        loudness_lufs=sample.loudness_lufs,
        true_peak_dbtp=sample.true_peak_dbtp,
        gain_db=sample.gain_db,
        preview_url=await samples.preview_url(state.storage, sample),
        created_at=sample.created_at,
        updated_at=sample.updated_at,
    )


@router.post(
    "/samples",
    status_code=201,
    response_model=Envelope[SampleOut],
    responses=error_responses(401, 409, 413, 415, 422, 503),
    openapi_extra=_UPLOAD_BODY,
)
async def upload_sample(
    request: Request, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[SampleOut]:
    """An audio file in the multipart part `file` (and its `name` in the part `name`, else
    the file's name) becomes a sample, `pending` its conversion."""
    # No connection (nor, on SQLite, the write lock) is held while the body arrives.
    await release_connection(session)
    async with spooled(
        request, field=FILE_FIELD, max_bytes=state.settings.sample_max_bytes
    ) as upload:
        sample = await samples.add_sample(session, state, user, upload)
    return ok(await _out(state, sample))


@router.get("/samples", response_model=Envelope[SampleList], responses=error_responses(401, 422))
async def list_samples(
    session: SessionDep, state: StateDep, user: CurrentUser, page: PageDep
) -> Envelope[SampleList]:
    """One's samples, newest first, and what they use of one's quota."""
    rows, pagination = await samples.list_samples(session, user.id, page)
    usage = await samples.usage(session, state.settings, user.id)
    return ok(
        SampleList(
            samples=[await _out(state, row) for row in rows],
            quota=Quota(used_bytes=usage.used_bytes, limit_bytes=usage.limit_bytes),
            pagination=pagination,
        )
    )


@router.get("/quota", response_model=Envelope[Quota], responses=error_responses(401))
async def quota(session: SessionDep, state: StateDep, user: CurrentUser) -> Envelope[Quota]:
    """What one's samples use of one's quota (`SAMPLE_QUOTA_BYTES`)."""
    usage = await samples.usage(session, state.settings, user.id)
    return ok(Quota(used_bytes=usage.used_bytes, limit_bytes=usage.limit_bytes))


@router.get(
    "/samples/{sample_id}", response_model=Envelope[SampleOut], responses=error_responses(401, 404)
)
async def get_sample(
    sample_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[SampleOut]:
    return ok(await _out(state, await samples.get_sample(session, user.id, sample_id)))


@router.put(
    "/samples/{sample_id}",
    response_model=Envelope[SampleOut],
    responses=error_responses(401, 404, 409, 422),
)
async def rename_sample(
    sample_id: str, body: SampleRename, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[SampleOut]:
    """A new name for one's sample."""
    return ok(await _out(state, await samples.rename(session, user.id, sample_id, body.name)))


@router.delete(
    "/samples/{sample_id}",
    response_model=Envelope[SampleDeleted],
    responses=error_responses(401, 404),
)
async def delete_sample(
    sample_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[SampleDeleted]:
    """Delete one's sample and its files."""
    await samples.delete(session, state.jobs, user.id, sample_id)
    return ok(SampleDeleted(id=sample_id, deleted=True))


@router.post(
    "/samples/{sample_id}/retry",
    status_code=202,
    response_model=Envelope[SampleOut],
    responses=error_responses(401, 404, 409),
)
async def retry_sample(
    sample_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[SampleOut]:
    """Convert a `failed` sample again."""
    return ok(await _out(state, await samples.retry(session, state.jobs, user.id, sample_id)))
