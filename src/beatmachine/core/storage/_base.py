"""What both storage back ends share: the interface, object metadata, streams, errors, keys."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

import anyio

from beatmachine.core.errors import NotFound, ServiceUnavailable, ValidationFailed

# Size of the chunks a download yields: small enough to keep memory flat per stream,
# large enough that a thread hop (local) or socket read (S3) per chunk costs little.
CHUNK_SIZE = 64 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# S3 allows 1024 bytes; file systems allow 255 per name, and the local back end adds
# a dot and `.meta.json` for its sidecar files.
MAX_KEY_LENGTH = 512
MAX_SEGMENT_LENGTH = 200
MAX_HEADER_VALUE_LENGTH = 255
# A segment never starts with a dot: that excludes `.` and `..`, and keeps the names
# the local back end uses for sidecars and temporary files out of the key space.
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]+")

Body = bytes | AsyncIterable[bytes]


class StorageUnavailable(ServiceUnavailable):
    """The object store cannot be reached or fails (connection refused, timeout, 5xx)."""

    message = "File storage is unavailable; try again later."


class StorageObjectNotFound(NotFound):
    """No object is stored under the key."""

    message = "No such file."


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What the store knows about one object."""

    key: str
    size: int
    content_type: str
    cache_control: str | None
    # The entity tag with its quotes, as the ETag header carries it.
    etag: str
    # Time zone aware, UTC.
    last_modified: datetime
    public: bool


class ObjectStream:
    """An object's bytes, chunk by chunk, with its metadata in `info`.

    Close it (`aclose`, or use it as `async with`) once done, read to the end or not, so
    the file or the S3 connection behind it is released.
    """

    def __init__(
        self,
        info: StoredObject,
        chunks: AsyncGenerator[bytes, None],
        release: Callable[[], Awaitable[None]],
    ) -> None:
        self.info = info
        self._chunks = chunks
        self._release = release
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The stream is its own iterator: it can be read once."""
        return self

    async def __anext__(self) -> bytes:
        """The next chunk of the object."""
        if self._closed:
            raise StopAsyncIteration
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        """Release the file or connection; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        # Shielded: a cancelled request must still give its connection back.
        with anyio.CancelScope(shield=True):
            try:
                await self._chunks.aclose()
            finally:
                await self._release()

    async def __aenter__(self) -> ObjectStream:
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class Storage(Protocol):
    """Object storage: the local disk or an S3 bucket, chosen by `STORAGE_BACKEND`."""

    async def put(
        self,
        key: str,
        body: Body,
        *,
        content_type: str,
        public: bool,
        cache_control: str | None = None,
    ) -> StoredObject:
        """Store `body` (bytes, or chunks streamed from an async iterable) under `key`.

        The object appears whole or not at all; an exception from `body` leaves nothing.
        """
        ...

    async def open(self, key: str) -> ObjectStream:
        """Stream the object; raises StorageObjectNotFound when there is none."""
        ...

    async def head(self, key: str) -> StoredObject | None:
        """The object's metadata, or None when there is no such object."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""
        ...

    async def url(self, key: str, *, public: bool, expires_in: int | None = None) -> str:
        """Where a client fetches the object: a plain (CDN) URL for public objects, an
        expiring signed URL for private ones (`expires_in` seconds, default
        `STORAGE_URL_TTL`)."""
        ...

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the store answers (readiness check)."""
        ...

    async def aclose(self) -> None:
        """Release connections and clients (shutdown)."""
        ...


def validate_key(key: str) -> str:
    """`key` when it is a relative path of safe segments; raises ValidationFailed otherwise."""
    segments = key.split("/")
    valid = (
        0 < len(key) <= MAX_KEY_LENGTH
        and key.isascii()
        and all(
            len(segment) <= MAX_SEGMENT_LENGTH and _SEGMENT.fullmatch(segment)
            for segment in segments
        )
    )
    if not valid:
        raise ValidationFailed(
            "The file key is not valid.",
            details=_field_error(
                "key",
                "use letters, digits, '.', '_', '-' and '/' between segments; "
                f"at most {MAX_KEY_LENGTH} characters",
                "invalid_key",
            ),
        )
    return key


def validate_header_value(field: str, value: str) -> str:
    """`value` when it can go into a response header as it is (no control characters)."""
    if len(value) > MAX_HEADER_VALUE_LENGTH or not _HEADER_VALUE.fullmatch(value):
        raise ValidationFailed(
            f"The {field} is not valid.",
            details=_field_error(
                field, "printable ASCII, at most 255 characters", "invalid_header_value"
            ),
        )
    return value


def join_url(base: str, key: str) -> str:
    """`base/key`, the key percent-encoded (a no-op for valid keys) and `/` kept."""
    return f"{base.rstrip('/')}/{quote(key, safe='/')}"


async def blocks(body: Body, size: int) -> AsyncGenerator[bytes, None]:
    """`body` re-cut into blocks of `size` bytes (the last one shorter), holding at most
    one block and one incoming chunk in memory; an empty body yields nothing."""
    if isinstance(body, bytes | bytearray | memoryview):
        for start in range(0, len(body), size):
            yield bytes(body[start : start + size])
        return
    buffer = bytearray()
    async for chunk in body:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _field_error(field: str, message: str, error_type: str) -> dict[str, Any]:
    return {"fields": [{"field": field, "message": message, "type": error_type}]}
