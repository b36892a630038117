"""Who is calling: `CurrentUser`, `OptionalUser`, `AdminUser`, `CurrentAuth`, `ClientInfo`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from beatmachine.auth import service
from beatmachine.auth.service import Authenticated, Client
from beatmachine.core.db import SessionDep
from beatmachine.core.errors import AuthRequired, Forbidden
from beatmachine.core.middleware import client_ip
from beatmachine.core.state import StateDep
from beatmachine.users import service as users_service
from beatmachine.users.models import User

_bearer = HTTPBearer(auto_error=False, description="Access token from login or register.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

# `openapi_extra` of a route that takes `OptionalUser`: its bearer requirement is optional
# (an empty requirement beside it). Such a route also declares 401: a token that is sent
# must be valid.
OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}


async def _current_auth(
    session: SessionDep, state: StateDep, credentials: BearerDep
) -> Authenticated:
    if credentials is None:
        raise AuthRequired()
    return await service.authenticate(session, state, credentials.credentials)


async def _current_user(auth: Annotated[Authenticated, Depends(_current_auth)]) -> User:
    return auth.user


async def _optional_user(
    session: SessionDep, state: StateDep, credentials: BearerDep
) -> User | None:
    if credentials is None:
        return None
    return (await service.authenticate(session, state, credentials.credentials)).user


async def _admin_user(state: StateDep, user: Annotated[User, Depends(_current_user)]) -> User:
    if not users_service.is_admin(user, state.settings):
        raise Forbidden("Administrators only.")
    return user


async def _client(request: Request, state: StateDep) -> Client:
    return Client(
        ip=client_ip(request.scope, state.settings.trusted_proxies),
        user_agent=request.headers.get("user-agent"),
    )


CurrentAuth = Annotated[Authenticated, Depends(_current_auth)]
CurrentUser = Annotated[User, Depends(_current_user)]
OptionalUser = Annotated[User | None, Depends(_optional_user)]
AdminUser = Annotated[User, Depends(_admin_user)]
ClientInfo = Annotated[Client, Depends(_client)]
