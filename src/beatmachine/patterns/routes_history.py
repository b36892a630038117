"""HTTP routes of a pattern's version history and share links."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from beatmachine.auth.dependencies import CurrentUser
from beatmachine.core.db import SessionDep
from beatmachine.core.pagination import PageDep, Pagination
from beatmachine.core.responses import dumps
from beatmachine.core.schemas import (
    INT32_MAX,
    CamelModel,
    Envelope,
    Message,
    Timestamp,
    VersionPath,
    error_responses,
    ok,
)
from beatmachine.core.state import StateDep
from beatmachine.patterns import service, sharing, versions, views
from beatmachine.patterns.schemas import PatternOut, PatternUpdated

router = APIRouter(prefix="/patterns", tags=["pattern history and sharing"])
shared_router = APIRouter(prefix="/shared", tags=["pattern history and sharing"])


class VersionOut(CamelModel):
    version: int
    current: bool
    author_id: str | None
    created_at: Timestamp
    state: dict[str, Any]


class VersionList(CamelModel):
    versions: list[VersionOut]
    pagination: Pagination


class VersionDiff(CamelModel):
    pattern_id: str
    from_version: int
    to_version: int
    fields: dict[str, Any]
    instruments: list[dict[str, Any]]


class ShareLinkOut(CamelModel):
    id: str
    url: str
    token: str
    created_at: Timestamp


class ShareLinkList(CamelModel):
    links: list[ShareLinkOut]


def _version_out(item: versions.VersionState) -> VersionOut:
    return VersionOut(
        version=item.version,
        current=item.current,
        author_id=item.author_id,
        created_at=item.created_at,
        state=item.state,
    )


@router.get(
    "/{pattern_id}/versions",
    response_model=Envelope[VersionList],
    responses=error_responses(401, 403, 404),
)
async def list_versions(
    pattern_id: str, session: SessionDep, page: PageDep, user: CurrentUser
) -> Envelope[VersionList]:
    """The owner's view of every version, newest (the current state) first."""
    pattern = await service.get_owned(session, pattern_id, user)
    items, pagination = await versions.list_versions(session, pattern, page)
    return ok(VersionList(versions=[_version_out(i) for i in items], pagination=pagination))


@router.get(
    "/{pattern_id}/versions/diff",
    response_model=Envelope[VersionDiff],
    responses=error_responses(401, 403, 404, 422),
)
async def diff_versions(
    pattern_id: str,
    session: SessionDep,
    user: CurrentUser,
    from_version: Annotated[int, Query(alias="from", ge=1, le=INT32_MAX)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=INT32_MAX)],
) -> Envelope[VersionDiff]:
    """What changed between two versions, per field and per instrument."""
    pattern = await service.get_owned(session, pattern_id, user)
    old = await versions.get_version(session, pattern, from_version)
    new = await versions.get_version(session, pattern, to_version)
    changes = versions.diff(old.state, new.state)
    return ok(
        VersionDiff(
            pattern_id=pattern.id,
            from_version=from_version,
            to_version=to_version,
            fields=changes["fields"],
            instruments=changes["instruments"],
        )
    )


@router.get(
    "/{pattern_id}/versions/{version}",
    response_model=Envelope[VersionOut],
    responses=error_responses(401, 403, 404),
)
async def get_version(
    pattern_id: str, version: VersionPath, session: SessionDep, user: CurrentUser
) -> Envelope[VersionOut]:
    pattern = await service.get_owned(session, pattern_id, user)
    return ok(_version_out(await versions.get_version(session, pattern, version)))


@router.post(
    "/{pattern_id}/versions/{version}/restore",
    response_model=Envelope[PatternUpdated],
    responses=error_responses(401, 403, 404, 422),
)
async def restore_version(
    pattern_id: str, version: VersionPath, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[PatternUpdated]:
    """Make an old version current again (the restore is itself a new version)."""
    pattern = await versions.restore_version(session, state, user, pattern_id, version)
    return ok(views.updated(pattern))


@router.post(
    "/{pattern_id}/share-links",
    status_code=201,
    response_model=Envelope[ShareLinkOut],
    responses=error_responses(401, 403, 404),
)
async def create_share_link(
    pattern_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[ShareLinkOut]:
    """An unlisted link that opens the pattern read-only, without an account."""
    link = await sharing.create_link(session, user, pattern_id)
    return ok(
        ShareLinkOut(
            id=link.id,
            url=sharing.link_url(state.settings, link),
            token=link.token,
            created_at=link.created_at,
        )
    )


@router.get(
    "/{pattern_id}/share-links",
    response_model=Envelope[ShareLinkList],
    responses=error_responses(401, 403, 404),
)
async def list_share_links(
    pattern_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[ShareLinkList]:
    links = await sharing.list_links(session, user, pattern_id)
    return ok(
        ShareLinkList(
            links=[
                ShareLinkOut(
                    id=link.id,
                    url=sharing.link_url(state.settings, link),
                    token=link.token,
                    created_at=link.created_at,
                )
                for link in links
            ]
        )
    )


@router.delete(
    "/{pattern_id}/share-links/{link_id}",
    response_model=Envelope[Message],
    responses=error_responses(401, 403, 404),
)
async def revoke_share_link(
    pattern_id: str, link_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[Message]:
    await sharing.revoke_link(session, user, pattern_id, link_id)
    return ok(Message(message="The share link no longer opens the pattern."))


@shared_router.get("/{token}", response_model=Envelope[PatternOut], responses=error_responses(404))
async def open_shared(token: str, session: SessionDep, state: StateDep) -> Response:
    """The pattern behind an unlisted link, read-only; no account needed."""
    pattern = await sharing.open_link(session, token)
    author = await service.author_of(session, pattern)
    data = views.full(pattern, author, False, state.settings).model_dump(mode="json", by_alias=True)
    return Response(
        dumps({"success": True, "data": data}),
        media_type="application/json",
        headers={"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex"},
    )
