"""HTTP routes of the patterns domain (Part A) and its history, sharing and transfer
(Part B)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from beatmachine.auth.dependencies import OPTIONAL_AUTH, CurrentUser, OptionalUser
from beatmachine.core.config import Settings
from beatmachine.core.db import SessionDep
from beatmachine.core.errors import ValidationFailed
from beatmachine.core.pagination import PageDep, Pagination
from beatmachine.core.responses import dumps, etag_matches
from beatmachine.core.schemas import NOT_MODIFIED, Envelope, Message, error_responses, ok
from beatmachine.core.state import StateDep
from beatmachine.patterns import service, sharing, transfer, views
from beatmachine.patterns.models import Pattern
from beatmachine.patterns.schemas import (
    ForkResult,
    LikeResult,
    PatternCreate,
    PatternCreated,
    PatternList,
    PatternOut,
    PatternUpdate,
    PatternUpdated,
    PlayResult,
    SortOrder,
)
from beatmachine.users.models import User

router = APIRouter(prefix="/patterns", tags=["patterns"])

XML_MEDIA_TYPE = "application/xml"
IMPORT_PATH = "/api/patterns/import"
XML_BODY_PATHS = (IMPORT_PATH,)


def _list(rows: list[tuple[Pattern, User]], pagination: Any) -> PatternList:
    return PatternList(patterns=[views.list_item(p, a) for p, a in rows], pagination=pagination)


SortQuery = Annotated[SortOrder, Query()]
SearchQuery = Annotated[str | None, Query(max_length=200)]
# No control characters: PostgreSQL refuses NUL in text, which would otherwise be a 500.
NO_CONTROL_CHARS = r"^[^\x00-\x1f\x7f]*$"
FlavorQuery = Annotated[str | None, Query(max_length=50, pattern=NO_CONTROL_CHARS)]
UserIdQuery = Annotated[str | None, Query(alias="userId", max_length=32, pattern=NO_CONTROL_CHARS)]


@router.get(
    "",
    response_model=Envelope[PatternList],
    responses=error_responses(401, 422),
    openapi_extra=OPTIONAL_AUTH,
)
async def list_patterns(
    session: SessionDep,
    state: StateDep,
    page: PageDep,
    viewer: OptionalUser,
    sort: SortQuery = "recent",
    flavor: FlavorQuery = None,
    user_id: UserIdQuery = None,
    search: SearchQuery = None,
) -> Envelope[PatternList]:
    """Public patterns; `sort` recent (default), popular (most played) or liked."""
    filters = service.ListFilter(sort=sort, flavor=flavor, user_id=user_id, search=search)
    rows, pagination = await service.list_patterns(session, state.cache, page, filters)
    return ok(_list(rows, pagination))


@router.get("/me", response_model=Envelope[PatternList], responses=error_responses(401, 422))
async def list_my_patterns(
    session: SessionDep,
    state: StateDep,
    page: PageDep,
    user: CurrentUser,
    include_private: Annotated[bool, Query(alias="includePrivate")] = True,
    sort: SortQuery = "recent",
    flavor: FlavorQuery = None,
    search: SearchQuery = None,
) -> Envelope[PatternList]:
    filters = service.ListFilter(sort=sort, flavor=flavor, search=search)
    rows, pagination = await service.list_patterns(
        session, state.cache, page, filters, owner=user, include_private=include_private
    )
    return ok(_list(rows, pagination))


@router.get("/me/export", responses=error_responses(401))
async def export_my_patterns(session: SessionDep, user: CurrentUser) -> Response:
    """Every pattern of the caller in one JSON download (the bundle format)."""
    patterns = await service.all_of_user(session, user)
    return Response(
        dumps(transfer.bundle(patterns)),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="beatmachine-patterns.json"'},
    )


@router.get("/deleted", response_model=Envelope[PatternList], responses=error_responses(401))
async def list_deleted(session: SessionDep, user: CurrentUser) -> Envelope[PatternList]:
    """The caller's deleted patterns that can still be restored (7 days)."""
    rows = await service.list_deleted(session, user)
    total = len(rows)
    return ok(
        PatternList(
            patterns=[views.list_item(p, a) for p, a in rows],
            pagination=Pagination(
                page=1, limit=max(total, 1), total=total, pages=1 if total else 0
            ),
        )
    )


@router.post(
    "",
    status_code=201,
    response_model=Envelope[PatternCreated],
    responses=error_responses(401, 422, 429),
)
async def create_pattern(
    body: PatternCreate, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[PatternCreated]:
    await service.check_create_limit(state, user)
    pattern = await service.create(session, state, user, body)
    return ok(_created(pattern, state.settings))


def _created(pattern: Pattern, settings: Settings) -> PatternCreated:
    return PatternCreated(
        id=pattern.id,
        title=pattern.title,
        description=pattern.description,
        flavor=pattern.flavor,
        bpm=pattern.bpm,
        key_note=pattern.key_note,
        is_public=pattern.is_public,
        share_url=sharing.public_url(settings, pattern),
        created_at=pattern.created_at,
    )


@router.post(
    "/import",
    status_code=201,
    response_model=Envelope[PatternCreated],
    responses=error_responses(401, 413, 415, 422, 429),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                XML_MEDIA_TYPE: {"schema": {"type": "string"}},
            }
        }
    },
)
async def import_pattern(
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: CurrentUser,
    title: Annotated[str | None, Query(max_length=200)] = None,
) -> Envelope[PatternCreated]:
    """Create a pattern from an export file (JSON) or a front-end machine XML file."""
    data = await request.body()
    if len(data) > transfer.MAX_IMPORT_BYTES:
        raise ValidationFailed(f"The file is larger than {transfer.MAX_IMPORT_BYTES} bytes.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/xml", "text/xml"):
        body = transfer.parse_xml_file(data, title=title)
    else:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValidationFailed("The file is not valid JSON.") from exc
        body = transfer.parse_json_file(parsed, title=title)
    await service.check_create_limit(state, user)
    pattern = await service.create(session, state, user, body)
    return ok(_created(pattern, state.settings))


@router.get(
    "/{pattern_id}",
    response_model=Envelope[PatternOut],
    responses={**NOT_MODIFIED, **error_responses(401, 404)},
    openapi_extra=OPTIONAL_AUTH,
)
async def get_pattern(
    pattern_id: str, request: Request, session: SessionDep, state: StateDep, viewer: OptionalUser
) -> Response:
    """A pattern; someone else's private pattern is 404. Anonymous reads of public
    patterns are served from the cache with an ETag."""
    if viewer is None:
        rendered = await service.rendered_public(
            session, state.cache, pattern_id, _render_public(state.settings)
        )
        headers = {"ETag": rendered.etag, "Cache-Control": "public, max-age=0, must-revalidate"}
        if etag_matches(request.headers.get("if-none-match", ""), rendered.etag):
            return Response(status_code=304, headers=headers)
        return Response(rendered.body, media_type="application/json", headers=headers)
    pattern = await service.get_visible(session, pattern_id, viewer)
    author = await service.author_of(session, pattern)
    liked = await service.is_liked(session, pattern, viewer)
    return Response(
        dumps(
            {
                "success": True,
                "data": views.full(pattern, author, liked, state.settings).model_dump(
                    mode="json", by_alias=True
                ),
            }
        ),
        media_type="application/json",
        # The viewer's own answer (a private pattern, whether they liked it): never kept.
        headers={"Cache-Control": "private, no-store"},
    )


def _render_public(settings: Settings) -> service.Renderer:
    def render(pattern: Pattern, author: User) -> bytes:
        data = views.full(pattern, author, False, settings).model_dump(mode="json", by_alias=True)
        return dumps({"success": True, "data": data})

    return render


@router.put(
    "/{pattern_id}",
    response_model=Envelope[PatternUpdated],
    responses=error_responses(401, 403, 404, 422),
)
async def update_pattern(
    pattern_id: str, body: PatternUpdate, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[PatternUpdated]:
    pattern = await service.update(session, state, user, pattern_id, body)
    return ok(views.updated(pattern))


@router.delete(
    "/{pattern_id}", response_model=Envelope[Message], responses=error_responses(401, 403, 404)
)
async def delete_pattern(
    pattern_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[Message]:
    await service.soft_delete(session, state, user, pattern_id)
    return ok(Message(message="Pattern deleted; you can restore it within 7 days."))


@router.post(
    "/{pattern_id}/restore",
    response_model=Envelope[PatternUpdated],
    responses=error_responses(401, 404),
)
async def restore_pattern(
    pattern_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[PatternUpdated]:
    pattern = await service.restore(session, state, user, pattern_id)
    return ok(views.updated(pattern))


@router.post(
    "/{pattern_id}/like", response_model=Envelope[LikeResult], responses=error_responses(401, 404)
)
async def like_pattern(
    pattern_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[LikeResult]:
    count = await service.like(session, state, user, pattern_id)
    return ok(LikeResult(liked=True, like_count=count))


@router.delete(
    "/{pattern_id}/like", response_model=Envelope[LikeResult], responses=error_responses(401, 404)
)
async def unlike_pattern(
    pattern_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[LikeResult]:
    count = await service.unlike(session, state, user, pattern_id)
    return ok(LikeResult(liked=False, like_count=count))


@router.post(
    "/{pattern_id}/play",
    response_model=Envelope[PlayResult],
    responses=error_responses(401, 404),
    openapi_extra=OPTIONAL_AUTH,
)
async def play_pattern(
    pattern_id: str, session: SessionDep, state: StateDep, viewer: OptionalUser
) -> Envelope[PlayResult]:
    count = await service.play(session, state, viewer, pattern_id)
    return ok(PlayResult(play_count=count))


@router.post(
    "/{pattern_id}/fork",
    status_code=201,
    response_model=Envelope[ForkResult],
    responses=error_responses(401, 404, 429),
)
async def fork_pattern(
    pattern_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[ForkResult]:
    await service.check_create_limit(state, user)
    copy = await service.fork(session, state, user, pattern_id)
    assert copy.original_id is not None
    return ok(
        ForkResult(
            id=copy.id, title=copy.title, original_id=copy.original_id, created_at=copy.created_at
        )
    )


@router.get(
    "/{pattern_id}/export",
    responses={
        200: {"content": {XML_MEDIA_TYPE: {"schema": {"type": "string"}}}},
        **error_responses(401, 404, 422),
    },
    openapi_extra=OPTIONAL_AUTH,
)
async def export_pattern(
    pattern_id: str,
    session: SessionDep,
    viewer: OptionalUser,
    export_format: Annotated[str, Query(alias="format", pattern="^(json|xml)$")] = "json",
) -> Response:
    """The pattern as a JSON export file or as the front end's machine XML."""
    pattern = await service.get_visible(session, pattern_id, viewer)
    if export_format == "xml":
        return Response(
            await transfer.to_xml(session, pattern),
            media_type=XML_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{pattern.id}.xml"'},
        )
    return Response(
        dumps(transfer.to_json(pattern)),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{pattern.id}.json"'},
    )
