"""Fast JSON rendering (orjson) shared by every response."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse

from beatmachine.core.ids import isoformat_z


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
