"""What only the S3 back end does: presigned URLs, bucket set-up, and a store that is down."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from beatmachine.core.errors import install_error_handlers
from beatmachine.core.storage import S3Storage, Storage, StorageUnavailable, create_storage
from beatmachine.core.storage._s3 import MAX_ATTEMPTS
from tests.core.storage_support import (
    MIB,
    GeneratedStream,
    read_all,
    storage_settings,
)
from tests.seaweedfs import HOST, SeaweedFS, free_port, running_seaweedfs

UNAVAILABLE = {
    "success": False,
    "error": {
        "code": "SERVICE_UNAVAILABLE",
        "message": "File storage is unavailable; try again later.",
    },
}
EXPIRY_DEADLINE = 15.0

Operation = Callable[[Storage, str], Awaitable[Any]]


def s3_storage(tmp_path: Path, seaweedfs: SeaweedFS | None = None, **overrides: Any) -> S3Storage:
    """An S3 storage on `seaweedfs`, or by default on a loopback port nobody listens on."""
    if seaweedfs is None:
        overrides = {
            "STORAGE_BACKEND": "s3",
            "AWS_S3_BUCKET": "bm-test",
            "AWS_S3_ENDPOINT_URL": f"http://{HOST}:{free_port()}",
            "AWS_ACCESS_KEY_ID": "key",
            "AWS_SECRET_ACCESS_KEY": "secret",
        } | overrides
    storage = create_storage(storage_settings(tmp_path / "var", seaweedfs, **overrides))
    assert isinstance(storage, S3Storage)
    return storage


@pytest.fixture
async def s3(seaweedfs: SeaweedFS, tmp_path: Path) -> AsyncIterator[S3Storage]:
    storage = s3_storage(tmp_path, seaweedfs, STORAGE_URL_TTL=900)
    yield storage
    await storage.aclose()


@pytest.fixture
def prefix() -> str:
    return f"s3-{secrets.token_hex(4)}"


@pytest.fixture
async def unreachable(tmp_path: Path) -> AsyncIterator[S3Storage]:
    """An S3 storage whose endpoint is a loopback port nobody listens on."""
    storage = s3_storage(tmp_path, STORAGE_TIMEOUT=1)
    yield storage
    await storage.aclose()


class LoopbackStore:
    """A loopback port standing in for a broken store, counting what reaches it: each
    request answered 503 at once, or (`hangs`) each connection accepted and never answered."""

    def __init__(self, *, hangs: bool) -> None:
        self.requests = 0
        self.connections = 0
        self._hangs = hangs
        self._writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            if self._hangs:
                while await reader.read(65536):
                    pass
                return
            # The answer does not wait for a body (an upload may wait for "100 Continue").
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            writer.close()

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


@contextlib.asynccontextmanager
async def loopback_store(*, hangs: bool) -> AsyncIterator[tuple[int, LoopbackStore]]:
    """Serve a LoopbackStore on a free loopback port for the length of the block."""
    store = LoopbackStore(hangs=hangs)
    server = await asyncio.start_server(store.handle, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1], store
    finally:
        store.close()
        server.close()
        await server.wait_closed()


# --- presigned URLs -------------------------------------------------------------------


async def test_private_url_is_presigned_and_serves_the_body(s3: S3Storage, prefix: str) -> None:
    key = f"{prefix}/secret.ogg"
    await s3.put(key, b"OggS private", content_type="audio/ogg", public=False)

    url = await s3.url(key, public=False)

    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["900"]  # STORAGE_URL_TTL
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Signature"][0]
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == b"OggS private"
    assert response.headers["content-type"] == "audio/ogg"


async def test_presigned_url_is_refused_after_it_expires(s3: S3Storage, prefix: str) -> None:
    key = f"{prefix}/brief.ogg"
    await s3.put(key, b"soon gone", content_type="audio/ogg", public=False)
    # Two seconds: S3 counts from the signing second, so one second may be nearly over.
    url = await s3.url(key, public=False, expires_in=2)

    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200
        with anyio.fail_after(EXPIRY_DEADLINE):
            while True:
                response = await http.get(url)
                if response.status_code != 200:
                    break
                await anyio.sleep(0.1)

    assert response.status_code == 403
    assert "<Message>Request has expired</Message>" in response.text


async def test_private_object_is_refused_without_a_signature(s3: S3Storage, prefix: str) -> None:
    key = f"{prefix}/secret.ogg"
    await s3.put(key, b"OggS private", content_type="audio/ogg", public=False)

    async with httpx.AsyncClient() as http:
        response = await http.get(await s3.url(key, public=True))

    assert response.status_code == 403


# --- the bucket -----------------------------------------------------------------------


async def test_ping_reports_a_missing_bucket_as_unavailable(
    seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    storage = s3_storage(tmp_path, seaweedfs, AWS_S3_BUCKET=f"bm-none-{secrets.token_hex(4)}")
    try:
        with pytest.raises(StorageUnavailable):
            await storage.ping()
    finally:
        await storage.aclose()


async def test_ensure_bucket_creates_the_bucket_once(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    bucket = f"bm-new-{secrets.token_hex(4)}"
    storage = s3_storage(tmp_path, seaweedfs, AWS_S3_BUCKET=bucket)
    try:
        await storage.ensure_bucket()
        await storage.ensure_bucket()

        await storage.ping()
    finally:
        await storage.aclose()
        await anyio.to_thread.run_sync(lambda: seaweedfs.client().delete_bucket(Bucket=bucket))


def test_s3_backend_without_a_bucket_is_a_configuration_error(tmp_path: Path) -> None:
    settings = storage_settings(tmp_path, None, STORAGE_BACKEND="s3")

    with pytest.raises(ValueError, match="AWS_S3_BUCKET"):
        create_storage(settings)


# --- a store that is down ---------------------------------------------------------------


async def _put_bytes(storage: Storage, key: str) -> Any:
    return await storage.put(key, b"x", content_type="text/plain", public=False)


async def _put_stream(storage: Storage, key: str) -> Any:
    return await storage.put(
        key, GeneratedStream(10 * MIB), content_type="text/plain", public=False
    )


async def _open(storage: Storage, key: str) -> Any:
    return await storage.open(key)


async def _head(storage: Storage, key: str) -> Any:
    return await storage.head(key)


async def _delete(storage: Storage, key: str) -> Any:
    return await storage.delete(key)


async def _ping(storage: Storage, _key: str) -> Any:
    return await storage.ping()


OPERATIONS: dict[str, Operation] = {
    "put-bytes": _put_bytes,
    "put-multipart-stream": _put_stream,
    "open": _open,
    "head": _head,
    "delete": _delete,
    "ping": _ping,
}


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
async def test_unreachable_store_raises_storage_unavailable(
    unreachable: S3Storage, operation: Operation
) -> None:
    with pytest.raises(StorageUnavailable) as raised:
        await operation(unreachable, "a/key.txt")

    error = raised.value
    assert (error.status, error.code) == (503, "SERVICE_UNAVAILABLE")
    assert error.message == "File storage is unavailable; try again later."


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
async def test_failing_store_is_tried_twice_then_unavailable(
    tmp_path: Path, operation: Operation
) -> None:
    async with loopback_store(hangs=False) as (port, store):
        storage = s3_storage(tmp_path, AWS_S3_ENDPOINT_URL=f"http://{HOST}:{port}")
        try:
            with pytest.raises(StorageUnavailable):
                await operation(storage, "a/key.txt")
        finally:
            await storage.aclose()

    # One retry, not botocore's default of several attempts with back-off.
    assert MAX_ATTEMPTS == 2
    assert store.requests == MAX_ATTEMPTS


async def test_store_that_never_answers_times_out_as_unavailable(tmp_path: Path) -> None:
    async with loopback_store(hangs=True) as (port, store):
        storage = s3_storage(
            tmp_path, AWS_S3_ENDPOINT_URL=f"http://{HOST}:{port}", STORAGE_TIMEOUT=0.5
        )
        try:
            with pytest.raises(StorageUnavailable):
                await storage.ping()
        finally:
            await storage.aclose()

    # Each attempt ended by the read timeout, then given up: no endless wait.
    assert store.connections == MAX_ATTEMPTS


async def test_wrong_credentials_make_the_store_unavailable(
    seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    storage = s3_storage(tmp_path, seaweedfs, AWS_SECRET_ACCESS_KEY="not-the-secret")
    try:
        with pytest.raises(StorageUnavailable):
            await storage.put("a/key.txt", b"x", content_type="text/plain", public=False)
    finally:
        await storage.aclose()


async def test_stopped_seaweedfs_makes_every_call_unavailable(tmp_path: Path) -> None:
    with running_seaweedfs(tmp_path / "own-seaweedfs") as server:
        storage = s3_storage(tmp_path, server, STORAGE_TIMEOUT=1)
        try:
            await storage.put("a/key.txt", b"before", content_type="text/plain", public=False)
            assert await read_all(await storage.open("a/key.txt")) == b"before"

            await anyio.to_thread.run_sync(server.stop)

            for operation in (_put_bytes, _open, _ping):
                with pytest.raises(StorageUnavailable):
                    await operation(storage, "a/key.txt")
        finally:
            await storage.aclose()


async def test_route_answers_503_with_the_envelope_when_the_store_is_down(
    unreachable: S3Storage,
) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/files/{key:path}")
    async def download(key: str) -> StreamingResponse:
        stream = await unreachable.open(key)
        return StreamingResponse(stream, media_type=stream.info.content_type)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/files/a/key.txt")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json() == UNAVAILABLE
