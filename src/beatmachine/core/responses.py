"""Fast JSON rendering (orjson) shared by every response."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import Depends, Request
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.types import Scope

from beatmachine.core.ids import isoformat_z

# The scope key `NoStore` sets; the request-context middleware then sends `no-store`.
_NO_STORE_KEY = "beatmachine.no_store"
NO_STORE = "no-store"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return isoformat_z(value)
    raise TypeError


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


class JSONResponse(StarletteJSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def etag_matches(if_none_match: str, etag: str) -> bool:
    """`If-None-Match` with the weak comparison of RFC 9110 (13.1.2): `W/"x"` matches `"x"`."""
    if not if_none_match:
        return False
    wanted = etag.strip().removeprefix("W/")
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return wanted in candidates or "*" in candidates


async def _no_store(request: Request) -> None:
    request.scope[_NO_STORE_KEY] = True


# A route (or router) declares with `dependencies=[NoStore]` that its answers hold secrets
# (tokens) or private data and must never be kept by a browser or a shared cache: they go
# out with `Cache-Control: no-store`, whatever the route set. Answers to a request that
# carries credentials get it anyway, unless their route chose a policy of its own.
NoStore = Depends(_no_store)


def declared_no_store(scope: Scope) -> bool:
    """Whether the route that answered `scope` declared `NoStore`."""
    return bool(scope.get(_NO_STORE_KEY))
