"""HTTP routes of the users domain."""

from __future__ import annotations

from fastapi import APIRouter, Request

from beatmachine.auth.dependencies import OPTIONAL_AUTH, CurrentUser, OptionalUser
from beatmachine.core.db import SessionDep, release_connection
from beatmachine.core.schemas import Envelope, error_responses, ok
from beatmachine.core.state import StateDep
from beatmachine.core.uploads import multipart_request_body, received_bytes
from beatmachine.users import avatars, service
from beatmachine.users.models import User
from beatmachine.users.schemas import (
    AvatarFetch,
    Me,
    Preferences,
    PreferencesEnvelope,
    PreferencesUpdate,
    ProfileUpdate,
    ProfileUpdated,
    PublicProfile,
)

router = APIRouter(prefix="/users", tags=["users"])


AVATAR_UPLOAD_PATH = "/api/users/me/avatar"
AVATAR_FIELD = "file"


def _avatar_fetch(user: User) -> AvatarFetch | None:
    fetch = avatars.pending_fetch(user)
    return None if fetch is None else AvatarFetch.model_validate(fetch, from_attributes=True)


def _updated(user: User) -> ProfileUpdated:
    return ProfileUpdated(
        id=user.id,
        display_name=user.display_name,
        bio=user.bio,
        avatar=user.avatar,
        avatar_fetch=_avatar_fetch(user),
        updated_at=user.updated_at,
    )


async def _me(session: SessionDep, state: StateDep, user: User) -> Me:
    return Me(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        avatar=user.avatar,
        avatar_fetch=_avatar_fetch(user),
        bio=user.bio,
        email_verified=user.email_verified_at is not None,
        is_admin=service.is_admin(user, state.settings),
        preferences=Preferences.model_validate(user.preferences),
        stats=await service.own_stats(session, user, state.profile_counts),
        deletion_scheduled_at=user.deletion_scheduled_at,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


@router.get("/me", response_model=Envelope[Me], responses=error_responses(401))
async def get_me(session: SessionDep, state: StateDep, user: CurrentUser) -> Envelope[Me]:
    return ok(await _me(session, state, user))


@router.put(
    "/me",
    response_model=Envelope[ProfileUpdated],
    responses=error_responses(401, 413, 415, 422, 503),
)
async def update_me(
    body: ProfileUpdate, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[ProfileUpdated]:
    user = await service.update_profile(session, state, user, body)
    return ok(_updated(user))


@router.put(
    "/me/avatar",
    response_model=Envelope[ProfileUpdated],
    responses=error_responses(401, 413, 415, 422, 503),
    openapi_extra=multipart_request_body(AVATAR_FIELD),
)
async def upload_avatar(
    request: Request, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[ProfileUpdated]:
    """A PNG, JPEG, WebP or GIF image in the multipart part `file` becomes the avatar."""
    # No connection (nor, on SQLite, the write lock) is held while the body arrives.
    await release_connection(session)
    _, raw = await received_bytes(
        request, field=AVATAR_FIELD, max_bytes=state.settings.avatar_max_bytes
    )
    await avatars.set_image(session, state, user, raw)
    return ok(_updated(user))


@router.delete(
    "/me/avatar", response_model=Envelope[ProfileUpdated], responses=error_responses(401)
)
async def delete_avatar(
    session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[ProfileUpdated]:
    """No avatar any more; its files are removed."""
    await avatars.clear(session, state, user)
    return ok(_updated(user))


@router.put(
    "/me/preferences",
    response_model=Envelope[PreferencesEnvelope],
    responses=error_responses(401, 422),
)
async def update_preferences(
    body: PreferencesUpdate, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[PreferencesEnvelope]:
    preferences = await service.update_preferences(session, user, body)
    return ok(PreferencesEnvelope(preferences=Preferences.model_validate(preferences)))


@router.get(
    "/{user_id}",
    response_model=Envelope[PublicProfile],
    responses=error_responses(401, 404),
    openapi_extra=OPTIONAL_AUTH,
)
async def get_user(
    user_id: str, session: SessionDep, state: StateDep, viewer: OptionalUser
) -> Envelope[PublicProfile]:
    user = await service.get_user(session, user_id)
    return ok(
        PublicProfile(
            id=user.id,
            display_name=user.display_name,
            avatar=user.avatar,
            bio=user.bio,
            stats=await service.public_stats(session, user, state.profile_counts),
            is_following=(
                viewer is not None and await state.is_following(session, viewer.id, user.id)
            ),
            created_at=user.created_at,
        )
    )
