"""`GET`/`HEAD /media/{key}`: the local back end's files, over HTTP.

Mounted only when `STORAGE_BACKEND=local`; with S3 clients fetch from the bucket (or
the CDN) directly. Public objects are served to anyone, private ones only with the
unexpired signature that `LocalStorage.url` puts in their URL.
"""

from __future__ import annotations

from email.utils import format_datetime

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from beatmachine.core.errors import Forbidden, ValidationFailed
from beatmachine.core.responses import etag_matches
from beatmachine.core.storage._base import ObjectStream, StorageObjectNotFound, StoredObject
from beatmachine.core.storage._local import MEDIA_PATH, LocalStorage

# Private objects without a cache policy of their own: browsers may keep them, shared
# caches (CDNs, proxies) may not.
PRIVATE_CACHE_CONTROL = "private"
# Uploaded files are served from the API's origin: never let one run as a page there.
_SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


class SignatureRefused(Forbidden):
    """A private file asked for without a valid, unexpired signature."""

    message = "This file link is not valid or has expired."


class _ObjectResponse(StreamingResponse):
    """Streams an ObjectStream and closes it however the response ends (a client that
    goes away included), so no file handle is left open."""

    def __init__(self, stream: ObjectStream, headers: dict[str, str]) -> None:
        super().__init__(stream, headers=headers)
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._stream.aclose()


def media_router(storage: LocalStorage) -> APIRouter:
    """The router serving `storage`'s objects under `/media` (left out of OpenAPI: it is
    not part of the API contract, only where local signed URLs point)."""
    router = APIRouter(include_in_schema=False)

    @router.get(MEDIA_PATH + "/{key:path}")
    async def get_media(request: Request, key: str) -> Response:
        """Stream the object, or 304 when the client's copy is current."""
        stream = await _open(storage, key)
        try:
            _authorize(storage, request, stream.info)
            headers = _headers(stream.info)
            if etag_matches(request.headers.get("if-none-match", ""), stream.info.etag):
                await stream.aclose()
                return Response(status_code=304, headers=headers)
        except BaseException:
            await stream.aclose()
            raise
        return _ObjectResponse(stream, headers | {"Content-Length": str(stream.info.size)})

    @router.head(MEDIA_PATH + "/{key:path}")
    async def head_media(request: Request, key: str) -> Response:
        """The headers a GET would answer with, and no body."""
        try:
            info = await storage.head(key)
        except ValidationFailed:
            info = None
        if info is None:
            raise StorageObjectNotFound()
        _authorize(storage, request, info)
        headers = _headers(info) | {"Content-Length": str(info.size)}
        if etag_matches(request.headers.get("if-none-match", ""), info.etag):
            return Response(status_code=304, headers=headers)
        return Response(headers=headers)

    return router


async def _open(storage: LocalStorage, key: str) -> ObjectStream:
    try:
        return await storage.open(key)
    except ValidationFailed as exc:  # no object can have this name (a sidecar's, say)
        raise StorageObjectNotFound() from exc


def _authorize(storage: LocalStorage, request: Request, info: StoredObject) -> None:
    if info.public:
        return
    query = request.query_params
    if not storage.verify(info.key, query.get("expires"), query.get("signature")):
        raise SignatureRefused()


def _headers(info: StoredObject) -> dict[str, str]:
    cache_control = info.cache_control or (None if info.public else PRIVATE_CACHE_CONTROL)
    headers = {
        "Content-Type": info.content_type,
        "ETag": info.etag,
        "Last-Modified": format_datetime(info.last_modified, usegmt=True),
        **_SAFETY_HEADERS,
    }
    if cache_control:
        headers["Cache-Control"] = cache_control
    return headers
