"""Shared by the storage tests: settings, one storage per back end, and streamed test data.

from tests.core.storage_support import StorageCase, make_case, case  # noqa: F401
"""

from __future__ import annotations

import hashlib
import itertools
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from beatmachine.core.config import Settings
from beatmachine.core.storage import ObjectStream, Storage, create_storage
from tests.seaweedfs import SeaweedFS

API_URL = "http://api.test:8000"
JWT_SECRET = "test-secret-" + "x" * 40
MIB = 1024 * 1024
BACKENDS = ["local", "s3"]

_counter = itertools.count(1)


def storage_settings(var_dir: Path, seaweedfs: SeaweedFS | None, **overrides: Any) -> Settings:
    """Settings of a storage on the local disk, or on `seaweedfs` when given."""
    values: dict[str, Any] = {
        "VAR_DIR": var_dir,
        "JWT_SECRET": JWT_SECRET,
        "API_URL": API_URL,
        "CDN_BASE_URL": "",
        "STORAGE_BACKEND": "local",
        "STORAGE_URL_TTL": 3600,
        "STORAGE_TIMEOUT": 5,
        "AWS_S3_BUCKET": "",
        "AWS_S3_REGION": "us-east-1",
        "AWS_S3_ENDPOINT_URL": "",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
    }
    if seaweedfs is not None:
        values |= seaweedfs.settings()
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class StorageCase:
    """A storage under test, and where to look behind its back."""

    backend: str
    storage: Storage
    settings: Settings
    seaweedfs: SeaweedFS | None
    # Every key of a test starts with it: one server serves all the tests of a worker.
    prefix: str = field(default_factory=lambda: f"t{next(_counter)}-{secrets.token_hex(4)}")

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    async def leftovers(self) -> list[str]:
        """Whatever this test left in the store: files (temporary ones included) under the
        media folder, or objects and unfinished multipart uploads under the prefix."""
        if self.seaweedfs is None:
            root = self.settings.effective_media_dir / self.prefix
            return sorted(str(path) for path in root.rglob("*") if path.is_file())
        return await anyio.to_thread.run_sync(self._s3_leftovers)

    def _s3_leftovers(self) -> list[str]:
        assert self.seaweedfs is not None
        client = self.seaweedfs.client()
        objects = client.list_objects_v2(Bucket=self.seaweedfs.bucket, Prefix=self.prefix)
        uploads = client.list_multipart_uploads(Bucket=self.seaweedfs.bucket, Prefix=self.prefix)
        return sorted(
            [f"object {item['Key']}" for item in objects.get("Contents", [])]
            + [f"upload {item['Key']}" for item in uploads.get("Uploads", [])]
        )


CaseFactory = Callable[..., Awaitable[StorageCase]]


@pytest.fixture(params=BACKENDS)
async def make_storage_case(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[CaseFactory]:
    """Makes storages of the back end this test runs with, with settings overrides;
    closes them after the test."""
    seaweedfs: SeaweedFS | None = None
    if request.param == "s3":  # started only by the tests that run on S3
        seaweedfs = request.getfixturevalue("seaweedfs")
    made: list[Storage] = []

    async def make(**overrides: Any) -> StorageCase:
        settings = storage_settings(tmp_path / "var", seaweedfs, **overrides)
        storage = create_storage(settings)
        made.append(storage)
        return StorageCase(request.param, storage, settings, seaweedfs)

    yield make
    for storage in made:
        await storage.aclose()


@pytest.fixture
async def storage_case(make_storage_case: CaseFactory) -> StorageCase:
    """A storage with the default settings, on each back end."""
    return await make_storage_case()


class GeneratedStream:
    """`size` pseudo-random bytes in chunks, made as they are read; `sha256` once read."""

    def __init__(self, size: int, chunk_size: int = MIB, *, fail_after: int | None = None):
        self.size = size
        self.chunk_size = chunk_size
        self.fail_after = fail_after
        self.sent = 0
        self._digest = hashlib.sha256()
        self._random = random.Random(size)

    @property
    def sha256(self) -> str:
        assert self.sent == self.size, "the stream was not read to the end"
        return self._digest.hexdigest()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise SourceBroke(f"source failed after {self.sent} bytes")
            chunk = self._random.randbytes(min(self.chunk_size, self.size - self.sent))
            self._digest.update(chunk)
            self.sent += len(chunk)
            yield chunk


class SourceBroke(RuntimeError):
    """Raised by a test's source stream (an upload whose client went away, say)."""


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    """`data` as an async stream of `size`-byte chunks."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(stream: ObjectStream) -> bytes:
    """The whole (small) object; closes the stream."""
    async with stream:
        return b"".join([chunk async for chunk in stream])


async def digest_of(stream: ObjectStream) -> tuple[str, int, int]:
    """sha256, size and the largest chunk of the stream, read chunk by chunk; closes it."""
    digest, size, largest = hashlib.sha256(), 0, 0
    async with stream:
        async for chunk in stream:
            digest.update(chunk)
            size += len(chunk)
            largest = max(largest, len(chunk))
    return digest.hexdigest(), size, largest
