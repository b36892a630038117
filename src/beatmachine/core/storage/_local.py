"""Objects as files under one folder (the embedded set-up), served by `routes.media_router`.

Each object is a file at `<root>/<key>`; its content type, cache control and public
flag live in a hidden sidecar beside it (`.<name>.meta.json`). Keys never have a
segment starting with a dot, so sidecars and temporary files can never be addressed
as objects. All file work runs in worker threads, off the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import tempfile
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlencode

import anyio
import structlog

from beatmachine.core.errors import ValidationFailed
from beatmachine.core.storage._base import (
    CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    Body,
    ObjectStream,
    StorageObjectNotFound,
    StorageUnavailable,
    StoredObject,
    blocks,
    join_url,
    validate_header_value,
    validate_key,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")

MEDIA_PATH = "/media"
# Writes go to disk in blocks of this size: one thread hop per block, not per chunk.
WRITE_BLOCK_SIZE = 1024 * 1024
# The signing key of local URLs is derived from the service secret with this label,
# so the JWT key itself never signs anything but tokens.
_URL_KEY_LABEL = b"beatmachine/core/storage/local-url/v1"
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def derive_url_key(secret: str) -> bytes:
    """The HMAC key of local signed URLs, derived from the service's signing secret."""
    return hmac.new(secret.encode(), _URL_KEY_LABEL, hashlib.sha256).digest()


class LocalStorage:
    """Files under `root`; private objects are reached through HMAC-signed URLs."""

    def __init__(
        self,
        root: Path,
        *,
        api_url: str,
        cdn_base_url: str,
        url_key: bytes,
        url_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self._api_url = api_url.rstrip("/")
        self._cdn_base_url = cdn_base_url
        self._url_key = url_key
        self._url_ttl = url_ttl
        self._clock = clock

    # --- the Storage interface ------------------------------------------------------

    async def put(
        self,
        key: str,
        body: Body,
        *,
        content_type: str,
        public: bool,
        cache_control: str | None = None,
    ) -> StoredObject:
        """Write `body` to a temporary file beside the target, then rename it into place."""
        path = self._path(key)
        metadata = _metadata(content_type, cache_control, public)
        handle = await self._run(self._create_temporary, path)
        try:
            # Errors raised by `body` itself pass through unchanged; only our own file
            # work is turned into StorageUnavailable.
            async for block in blocks(body, WRITE_BLOCK_SIZE):
                await self._run(handle.write, block)
            return await self._run(self._commit, key, path, handle, metadata)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard, handle)
            raise

    async def open(self, key: str) -> ObjectStream:
        """Open the file; chunks are read in a worker thread each."""
        path = self._path(key)
        handle, info = await self._run(self._open_file, key, path, reading=True)

        async def chunks() -> AsyncGenerator[bytes, None]:
            while chunk := await self._run(handle.read, CHUNK_SIZE, reading=True):
                yield chunk

        async def release() -> None:
            await anyio.to_thread.run_sync(handle.close)

        return ObjectStream(info, chunks(), release)

    async def head(self, key: str) -> StoredObject | None:
        """The metadata of the file and its sidecar, or None."""
        path = self._path(key)
        try:
            return await self._run(self._stat_object, key, path, reading=True)
        except StorageObjectNotFound:
            return None

    async def delete(self, key: str) -> None:
        """Remove the file and its sidecar (empty folders stay: a concurrent put may be
        about to write into them)."""
        path = self._path(key)
        await self._run(self._delete_files, path)

    async def url(self, key: str, *, public: bool, expires_in: int | None = None) -> str:
        """`CDN_BASE_URL/<key>` or `API_URL/media/<key>`; signed and expiring if private."""
        validate_key(key)
        if public:
            return join_url(self._cdn_base_url or self._api_url + MEDIA_PATH, key)
        expires = int(self._clock()) + (expires_in if expires_in is not None else self._url_ttl)
        query = urlencode({"expires": expires, "signature": self.signature(key, expires)})
        return f"{join_url(self._api_url + MEDIA_PATH, key)}?{query}"

    async def ping(self) -> None:
        """The folder exists (or can be made) and is writable."""
        await self._run(self._check_root)

    async def aclose(self) -> None:
        """Nothing to release: files are closed by their streams."""

    # --- signed URLs --------------------------------------------------------------

    def signature(self, key: str, expires: int) -> str:
        """The URL signature granting access to `key` until the Unix time `expires`."""
        message = f"{key}\n{expires}".encode()
        digest = hmac.new(self._url_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, key: str, expires: str | None, signature: str | None) -> bool:
        """Whether `expires`/`signature` (from a URL's query) grant access to `key` now."""
        if not (expires and signature and expires.isascii() and expires.isdigit()):
            return False
        if len(expires) > 12 or int(expires) <= self._clock():
            return False
        return hmac.compare_digest(self.signature(key, int(expires)), signature)

    # --- file work, run in worker threads ------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    async def _run(self, function: Callable[..., T], *args: Any, reading: bool = False) -> T:
        """`function(*args)` in a worker thread, OS errors as StorageUnavailable (and, when
        `reading`, a missing file as StorageObjectNotFound)."""
        try:
            return await anyio.to_thread.run_sync(function, *args)
        except _MISSING as exc:
            if reading:
                raise StorageObjectNotFound() from exc
            raise self._unavailable(exc) from exc
        except OSError as exc:
            raise self._unavailable(exc) from exc

    @staticmethod
    def _unavailable(exc: OSError) -> StorageUnavailable:
        log.warning("storage_unavailable", backend="local", error=repr(exc))
        return StorageUnavailable()

    def _inside(self, path: Path) -> bool:
        # Resolving follows symbolic links: a link inside the folder that points out of
        # it must not let a key reach another part of the disk.
        return path.resolve().is_relative_to(self.root.resolve())

    def _create_temporary(self, path: Path) -> IO[bytes]:
        # Checked before mkdir, which would otherwise create folders through a link.
        if not self._inside(path.parent):
            raise ValidationFailed("The file key is not valid.")
        # The folder itself first: if it cannot be made, the store is unusable (an
        # OSError), whereas a clash below it is the key's fault.
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise _clash() from exc
        # Closed by _commit or _discard.
        return tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        )

    def _commit(
        self, key: str, path: Path, handle: IO[bytes], metadata: dict[str, Any]
    ) -> StoredObject:
        handle.close()
        sidecar = _sidecar(path)
        # The sidecar first: a new file never shows without its metadata.
        sidecar_tmp = sidecar.with_name(f"{sidecar.name}.{Path(handle.name).name}")
        try:
            sidecar_tmp.write_text(json.dumps(metadata))
            sidecar_tmp.replace(sidecar)
        except BaseException:
            sidecar_tmp.unlink(missing_ok=True)
            raise
        try:
            Path(handle.name).replace(path)
        except IsADirectoryError as exc:
            raise _clash() from exc
        return _object_info(key, path.stat(), metadata)

    def _open_file(self, key: str, path: Path) -> tuple[IO[bytes], StoredObject]:
        if not self._inside(path):
            raise FileNotFoundError(key)
        handle = path.open("rb")
        try:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise FileNotFoundError(key)
            return handle, _object_info(key, status, _read_metadata(path))
        except BaseException:
            handle.close()
            raise

    def _stat_object(self, key: str, path: Path) -> StoredObject:
        if not self._inside(path):
            raise FileNotFoundError(key)
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise FileNotFoundError(key)
        return _object_info(key, status, _read_metadata(path))

    def _delete_files(self, path: Path) -> None:
        if not self._inside(path) or path.is_dir():
            return
        path.unlink(missing_ok=True)
        _sidecar(path).unlink(missing_ok=True)

    def _check_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionError(f"{self.root} is not writable")


def _metadata(content_type: str, cache_control: str | None, public: bool) -> dict[str, Any]:
    return {
        "content_type": validate_header_value("content type", content_type),
        "cache_control": (
            validate_header_value("cache control", cache_control) if cache_control else None
        ),
        "public": public,
    }


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.meta.json")


def _read_metadata(path: Path) -> dict[str, Any]:
    """The sidecar's content; a file without one (copied in by hand) is private binary."""
    try:
        data = json.loads(_sidecar(path).read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    return data if isinstance(data, dict) else {}


def _object_info(key: str, status: os.stat_result, metadata: dict[str, Any]) -> StoredObject:
    cache_control = metadata.get("cache_control")
    return StoredObject(
        key=key,
        size=status.st_size,
        content_type=str(metadata.get("content_type") or DEFAULT_CONTENT_TYPE),
        cache_control=str(cache_control) if cache_control else None,
        # Size and modification time name this version of the file, as web servers do.
        etag=f'"{status.st_size:x}-{status.st_mtime_ns:x}"',
        last_modified=datetime.fromtimestamp(status.st_mtime, UTC),
        public=metadata.get("public") is True,
    )


def _discard(handle: IO[bytes]) -> None:
    handle.close()
    Path(handle.name).unlink(missing_ok=True)


def _clash() -> ValidationFailed:
    return ValidationFailed("The file key clashes with a folder of other files.")
