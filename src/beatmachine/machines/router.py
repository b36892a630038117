"""HTTP routes of the machines domain."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from beatmachine.auth.dependencies import AdminUser
from beatmachine.core.compression import MIN_COMPRESS_BYTES, negotiate
from beatmachine.core.db import SessionDep
from beatmachine.core.errors import ValidationFailed, validation_details
from beatmachine.core.pagination import PageDep
from beatmachine.core.rendered import Rendered
from beatmachine.core.responses import etag_matches
from beatmachine.core.schemas import NOT_MODIFIED, Envelope, VersionPath, error_responses, ok
from beatmachine.core.state import AppState, StateDep
from beatmachine.machines import service
from beatmachine.machines.document import SLUG_PATTERN
from beatmachine.machines.schemas import (
    Author,
    InstrumentWrite,
    MachineList,
    MachineOut,
    MachineWrite,
    RollbackRequest,
    VersionList,
    VersionSummary,
    within_bounds,
)
from beatmachine.machines.xml import (
    MAX_XML_BYTES,
    MachineXmlError,
    machine_to_xml,
    parse_machine_xml,
)

router = APIRouter(prefix="/machines", tags=["machines"])

XML_MEDIA_TYPE = "application/xml"
CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=300"
XML_BODY_PATHS = ("/api/machines/import",)


def _wants_xml(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/xml" in accept or "text/xml" in accept


async def _conditional(
    request: Request, state: AppState, rendered: Rendered, media_type: str
) -> Response:
    """304 for a matching `If-None-Match`, else the cached bytes, compressed ahead of time
    when the client accepts it."""
    headers = {
        "ETag": rendered.etag,
        "Cache-Control": CACHE_CONTROL,
        "Vary": "Accept, Accept-Encoding",
    }
    if etag_matches(request.headers.get("if-none-match", ""), rendered.etag):
        return Response(status_code=304, headers=headers)
    encoding = negotiate(request.headers.get("accept-encoding", ""))
    if encoding is None or len(rendered.body) < MIN_COMPRESS_BYTES:
        return Response(rendered.body, media_type=media_type, headers=headers)
    body = await service.compressed(state.cache, state.memo, rendered, encoding)
    headers["Content-Encoding"] = encoding
    return Response(body, media_type=media_type, headers=headers)


def _out(published: service.Published) -> MachineOut:
    return MachineOut.model_validate(
        {**published.document.model_dump(), "version": published.version.version}
    )


@router.get("", response_model=Envelope[MachineList], responses=NOT_MODIFIED)
async def list_machines(request: Request, state: StateDep) -> Response:
    rendered = await service.rendered_list(state.sessionmaker, state.cache, state.memo)
    return await _conditional(request, state, rendered, "application/json")


@router.post(
    "",
    status_code=201,
    response_model=Envelope[MachineOut],
    responses=error_responses(401, 403, 409, 422),
)
async def create_machine(
    body: MachineWrite, session: SessionDep, state: StateDep, admin: AdminUser
) -> Envelope[MachineOut]:
    result = await service.publish(
        session,
        state.cache,
        body.document(),
        author_id=admin.id,
        change_note=body.change_note or "Created",
        create=True,
    )
    return ok(_out(result.published))


@router.post(
    "/import",
    status_code=201,
    response_model=Envelope[MachineOut],
    responses=error_responses(401, 403, 413, 415, 422),
    openapi_extra={"requestBody": {"content": {XML_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
async def import_machine_xml(
    request: Request,
    session: SessionDep,
    state: StateDep,
    admin: AdminUser,
    machine_id: Annotated[str | None, Query(alias="id", pattern=SLUG_PATTERN)] = None,
    change_note: Annotated[str, Query(alias="changeNote", max_length=500)] = "",
) -> Envelope[MachineOut]:
    """Publish a front-end machine XML file (as a new machine or a new version)."""
    data = await request.body()
    try:
        document = await anyio.to_thread.run_sync(parse_machine_xml, data, machine_id)
    except MachineXmlError as exc:
        raise ValidationFailed(
            f"The machine XML was refused: {exc}",
            details={"element": exc.element, "maxBytes": MAX_XML_BYTES},
        ) from exc
    try:
        within_bounds(document)
    except ValidationError as exc:
        raise ValidationFailed(
            "The machine XML was refused: a value is out of range.",
            details=validation_details(exc.errors()),
        ) from exc
    result = await service.publish(
        session,
        state.cache,
        document,
        author_id=admin.id,
        change_note=change_note or "Imported from XML",
    )
    return ok(_out(result.published))


@router.get(
    "/{machine_id}.xml",
    response_class=Response,
    responses={200: {"content": {XML_MEDIA_TYPE: {}}}, **NOT_MODIFIED, **error_responses(404)},
)
async def get_machine_xml(machine_id: str, request: Request, state: StateDep) -> Response:
    rendered = await service.rendered_document(
        state.sessionmaker, state.cache, state.memo, machine_id, "xml"
    )
    return await _conditional(request, state, rendered, XML_MEDIA_TYPE)


@router.get(
    "/{machine_id}",
    response_model=Envelope[MachineOut],
    responses={200: {"content": {XML_MEDIA_TYPE: {}}}, **NOT_MODIFIED, **error_responses(404)},
)
async def get_machine(machine_id: str, request: Request, state: StateDep) -> Response:
    """The current version; `Accept: application/xml` gives the front end's XML."""
    if _wants_xml(request):
        rendered = await service.rendered_document(
            state.sessionmaker, state.cache, state.memo, machine_id, "xml"
        )
        return await _conditional(request, state, rendered, XML_MEDIA_TYPE)
    rendered = await service.rendered_document(
        state.sessionmaker, state.cache, state.memo, machine_id, "json"
    )
    return await _conditional(request, state, rendered, "application/json")


@router.put(
    "/{machine_id}",
    response_model=Envelope[MachineOut],
    responses=error_responses(401, 403, 404, 422),
)
async def update_machine(
    machine_id: str, body: MachineWrite, session: SessionDep, state: StateDep, admin: AdminUser
) -> Envelope[MachineOut]:
    """Publish a new version of the whole machine."""
    if body.id != machine_id:
        raise ValidationFailed(
            details={
                "fields": [{"field": "id", "message": "must match the path", "type": "mismatch"}]
            }
        )
    result = await service.publish(
        session,
        state.cache,
        body.document(),
        author_id=admin.id,
        change_note=body.change_note,
        create=False,
    )
    return ok(_out(result.published))


@router.get(
    "/{machine_id}/versions", response_model=Envelope[VersionList], responses=error_responses(404)
)
async def list_versions(
    machine_id: str, session: SessionDep, state: StateDep, page: PageDep
) -> Envelope[VersionList]:
    machine = await service.get_machine(session, machine_id)
    versions, pagination = await service.list_versions(session, machine_id, page)
    authors = await state.display_names(session, {v.author_id for v in versions if v.author_id})
    return ok(
        VersionList(
            versions=[
                VersionSummary(
                    version=v.version,
                    change_note=v.change_note,
                    content_hash=v.content_hash,
                    author=Author(id=v.author_id, display_name=authors[v.author_id])
                    if v.author_id in authors
                    else None,
                    created_at=v.created_at,
                    current=v.version == machine.current_version,
                )
                for v in versions
            ],
            pagination=pagination,
        )
    )


@router.get(
    "/{machine_id}/versions/{version}",
    response_model=Envelope[MachineOut],
    responses={200: {"content": {XML_MEDIA_TYPE: {}}}, **NOT_MODIFIED, **error_responses(404)},
)
async def get_version(
    machine_id: str, version: VersionPath, request: Request, session: SessionDep
) -> Response:
    published = await service.get_published(session, machine_id, version)
    wants_xml = _wants_xml(request)
    representation = "xml" if wants_xml else "json"
    etag = service.version_etag(published.version.content_hash, version, representation)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400, immutable", "Vary": "Accept"}
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    if wants_xml:
        body = await anyio.to_thread.run_sync(machine_to_xml, published.document)
        return Response(body, media_type=XML_MEDIA_TYPE, headers=headers)
    return Response(
        ok(_out(published)).model_dump_json(by_alias=True),
        media_type="application/json",
        headers=headers,
    )


@router.post(
    "/{machine_id}/rollback",
    response_model=Envelope[MachineOut],
    responses=error_responses(401, 403, 404, 422),
)
async def rollback(
    machine_id: str, body: RollbackRequest, session: SessionDep, state: StateDep, admin: AdminUser
) -> Envelope[MachineOut]:
    published = await service.rollback(
        session,
        state.cache,
        machine_id,
        body.version,
        author_id=admin.id,
        change_note=body.change_note,
    )
    return ok(_out(published))


@router.post(
    "/{machine_id}/instruments",
    status_code=201,
    response_model=Envelope[MachineOut],
    responses=error_responses(401, 403, 404, 409, 422),
)
async def add_instrument(
    machine_id: str, body: InstrumentWrite, session: SessionDep, state: StateDep, admin: AdminUser
) -> Envelope[MachineOut]:
    published = await service.add_instrument(
        session,
        state.cache,
        machine_id,
        body.instrument(),
        author_id=admin.id,
        change_note=body.change_note,
    )
    return ok(_out(published))


@router.put(
    "/{machine_id}/instruments/{instrument_id}",
    response_model=Envelope[MachineOut],
    responses=error_responses(401, 403, 404, 409, 422),
)
async def replace_instrument(
    machine_id: str,
    instrument_id: str,
    body: InstrumentWrite,
    session: SessionDep,
    state: StateDep,
    admin: AdminUser,
) -> Envelope[MachineOut]:
    published = await service.replace_instrument(
        session,
        state.cache,
        machine_id,
        instrument_id,
        body.instrument(),
        author_id=admin.id,
        change_note=body.change_note,
    )
    return ok(_out(published))


@router.delete(
    "/{machine_id}/instruments/{instrument_id}",
    response_model=Envelope[MachineOut],
    responses=error_responses(401, 403, 404, 422),
)
async def remove_instrument(
    machine_id: str, instrument_id: str, session: SessionDep, state: StateDep, admin: AdminUser
) -> Envelope[MachineOut]:
    published = await service.remove_instrument(
        session, state.cache, machine_id, instrument_id, author_id=admin.id
    )
    return ok(_out(published))
