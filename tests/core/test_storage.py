"""Object storage, each behaviour on both back ends: the local disk and S3 (SeaweedFS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from beatmachine.core.errors import ValidationFailed
from beatmachine.core.storage import CHUNK_SIZE, PART_SIZE, StorageObjectNotFound
from tests.core.storage_support import (
    API_URL,
    MIB,
    CaseFactory,
    GeneratedStream,
    SourceBroke,
    StorageCase,
    chunks_of,
    digest_of,
    read_all,
)

BAD_KEYS = [
    "",
    "/absolute",
    "../escape",
    "a/../../escape",
    "a/./b",
    "a//b",
    "a/",
    ".hidden",
    "a/.b.meta.json",
    "with space",
    "back\\slash",
    "nul\x00byte",
    "ünïcode",
    "q?uery",
    "x" * 201,
    "/".join(["abcdefghij"] * 47),  # 516 characters
]


# --- writing and reading -------------------------------------------------------------


async def test_put_then_open_returns_the_bytes(storage_case: StorageCase) -> None:
    key = storage_case.key("hello.txt")

    await storage_case.storage.put(key, b"hello, storage", content_type="text/plain", public=False)

    assert await read_all(await storage_case.storage.open(key)) == b"hello, storage"


async def test_put_then_open_round_trips_an_async_stream(storage_case: StorageCase) -> None:
    key = storage_case.key("stream.bin")
    data = bytes(range(256)) * 1000

    await storage_case.storage.put(
        key, chunks_of(data, 1000), content_type="application/octet-stream", public=False
    )

    assert await read_all(await storage_case.storage.open(key)) == data


async def test_empty_body_is_stored_as_an_empty_object(storage_case: StorageCase) -> None:
    key = storage_case.key("empty")

    stored = await storage_case.storage.put(key, b"", content_type="text/plain", public=False)

    assert stored.size == 0
    assert await read_all(await storage_case.storage.open(key)) == b""


async def test_stream_larger_than_one_part_comes_back_identical(storage_case: StorageCase) -> None:
    key = storage_case.key("big.bin")
    source = GeneratedStream(20 * MIB)

    stored = await storage_case.storage.put(key, source, content_type="audio/ogg", public=False)

    assert stored.size == 20 * MIB
    digest, size, largest = await digest_of(await storage_case.storage.open(key))
    assert (digest, size) == (source.sha256, 20 * MIB)
    assert largest <= CHUNK_SIZE  # streamed back in chunks, never as one body
    if storage_case.backend == "s3":
        # S3 names a multipart object "<md5 of the parts' md5s>-<number of parts>":
        # 20 MiB went up in three parts of at most 8 MiB.
        assert stored.etag.endswith('-3"')


async def test_body_of_exactly_one_part_is_stored_whole(storage_case: StorageCase) -> None:
    key = storage_case.key("one-part.bin")
    source = GeneratedStream(PART_SIZE, chunk_size=PART_SIZE // 4)

    await storage_case.storage.put(key, source, content_type="audio/ogg", public=False)

    digest, size, _largest = await digest_of(await storage_case.storage.open(key))
    assert (digest, size) == (source.sha256, PART_SIZE)


async def test_put_overwrites_the_object_and_its_metadata(storage_case: StorageCase) -> None:
    key = storage_case.key("again.txt")
    await storage_case.storage.put(key, b"first", content_type="text/plain", public=True)

    await storage_case.storage.put(key, b"second!", content_type="text/csv", public=False)

    info = await storage_case.storage.head(key)
    assert info is not None
    assert (info.size, info.content_type, info.public) == (7, "text/csv", False)
    assert await read_all(await storage_case.storage.open(key)) == b"second!"


# --- metadata ------------------------------------------------------------------------


async def test_put_returns_what_was_stored(storage_case: StorageCase) -> None:
    key = storage_case.key("sound.ogg")
    before = datetime.now(UTC) - timedelta(seconds=5)

    stored = await storage_case.storage.put(
        key,
        b"OggS" + b"\x00" * 96,
        content_type="audio/ogg",
        public=True,
        cache_control="public, max-age=31536000, immutable",
    )

    assert stored.key == key
    assert stored.size == 100
    assert stored.content_type == "audio/ogg"
    assert stored.cache_control == "public, max-age=31536000, immutable"
    assert stored.public is True
    assert stored.etag.startswith('"') and stored.etag.endswith('"') and len(stored.etag) > 2
    assert before <= stored.last_modified <= datetime.now(UTC) + timedelta(seconds=5)


async def test_head_returns_the_stored_content_type_and_cache_control(
    storage_case: StorageCase,
) -> None:
    key = storage_case.key("image.webp")
    stored = await storage_case.storage.put(
        key, b"RIFF1234WEBP", content_type="image/webp", public=True, cache_control="no-cache"
    )

    info = await storage_case.storage.head(key)

    assert info is not None
    assert (info.key, info.size, info.content_type, info.cache_control, info.public) == (
        key,
        12,
        "image/webp",
        "no-cache",
        True,
    )
    assert info.etag == stored.etag
    assert abs(info.last_modified - stored.last_modified) < timedelta(seconds=2)


async def test_open_carries_the_metadata_with_the_stream(storage_case: StorageCase) -> None:
    key = storage_case.key("private.json")
    await storage_case.storage.put(key, b"{}", content_type="application/json", public=False)

    async with await storage_case.storage.open(key) as stream:
        info = stream.info

    assert (info.key, info.size, info.content_type, info.cache_control, info.public) == (
        key,
        2,
        "application/json",
        None,
        False,
    )


async def test_head_of_a_missing_key_is_none(storage_case: StorageCase) -> None:
    assert await storage_case.storage.head(storage_case.key("missing")) is None


async def test_open_of_a_missing_key_raises_not_found(storage_case: StorageCase) -> None:
    with pytest.raises(StorageObjectNotFound) as raised:
        await storage_case.storage.open(storage_case.key("missing"))

    assert (raised.value.status, raised.value.code) == (404, "NOT_FOUND")


# --- deleting ------------------------------------------------------------------------


async def test_delete_removes_the_object(storage_case: StorageCase) -> None:
    key = storage_case.key("doomed.txt")
    await storage_case.storage.put(key, b"bye", content_type="text/plain", public=False)

    await storage_case.storage.delete(key)

    assert await storage_case.storage.head(key) is None
    assert await storage_case.leftovers() == []


async def test_delete_of_a_missing_key_is_idempotent(storage_case: StorageCase) -> None:
    key = storage_case.key("doomed.txt")
    await storage_case.storage.put(key, b"bye", content_type="text/plain", public=False)
    await storage_case.storage.delete(key)

    await storage_case.storage.delete(key)
    await storage_case.storage.delete(storage_case.key("never-existed"))

    assert await storage_case.storage.head(key) is None


# --- keys and header values ------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_KEYS)
async def test_put_refuses_a_bad_key_and_writes_nothing(
    storage_case: StorageCase, name: str
) -> None:
    # Under the test's prefix where the key allows it, so leftovers would show.
    key = name if name.startswith("/") or not name else storage_case.key(name)

    with pytest.raises(ValidationFailed) as raised:
        await storage_case.storage.put(key, b"x", content_type="text/plain", public=True)

    assert raised.value.details is not None
    assert raised.value.details["fields"][0]["field"] == "key"
    assert await storage_case.leftovers() == []


@pytest.mark.parametrize("operation", ["open", "head", "delete", "url"])
async def test_every_operation_refuses_a_path_out_of_the_store(
    storage_case: StorageCase, operation: str
) -> None:
    method = getattr(storage_case.storage, operation)
    arguments = {"public": True} if operation == "url" else {}

    with pytest.raises(ValidationFailed):
        await method("../../etc/passwd", **arguments)


@pytest.mark.parametrize(
    ("content_type", "cache_control"),
    [("text/plain\r\nSet-Cookie: a=b", None), ("text/plain", "max-age=1\nX: y"), ("", None)],
)
async def test_put_refuses_header_values_that_would_break_a_response(
    storage_case: StorageCase, content_type: str, cache_control: str | None
) -> None:
    with pytest.raises(ValidationFailed):
        await storage_case.storage.put(
            storage_case.key("a.txt"),
            b"x",
            content_type=content_type,
            public=True,
            cache_control=cache_control,
        )

    assert await storage_case.leftovers() == []


# --- failed and cancelled uploads ------------------------------------------------------


async def test_failed_upload_leaves_nothing_behind(storage_case: StorageCase) -> None:
    key = storage_case.key("broken.bin")
    # Past the first part: on S3 the multipart upload has begun when the source breaks.
    source = GeneratedStream(20 * MIB, fail_after=PART_SIZE + 2 * MIB)

    with pytest.raises(SourceBroke):
        await storage_case.storage.put(key, source, content_type="audio/ogg", public=False)

    assert await storage_case.storage.head(key) is None
    assert await storage_case.leftovers() == []


async def test_failed_upload_keeps_the_previous_version(storage_case: StorageCase) -> None:
    key = storage_case.key("kept.txt")
    await storage_case.storage.put(key, b"old", content_type="text/plain", public=False)

    with pytest.raises(SourceBroke):
        await storage_case.storage.put(
            key,
            GeneratedStream(MIB, 1024, fail_after=4096),
            content_type="text/plain",
            public=False,
        )

    assert await read_all(await storage_case.storage.open(key)) == b"old"


async def test_cancelled_upload_leaves_nothing_behind(storage_case: StorageCase) -> None:
    key = storage_case.key("cancelled.bin")
    stalled = anyio.Event()

    async def stalling_source() -> AsyncIterator[bytes]:
        yield b"x" * PART_SIZE  # a whole first part: on S3 it goes up before the stall
        stalled.set()
        await anyio.sleep_forever()
        yield b""  # pragma: no cover

    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: storage_case.storage.put(
                key, stalling_source(), content_type="audio/ogg", public=False
            )
        )
        await stalled.wait()
        group.cancel_scope.cancel()

    assert await storage_case.storage.head(key) is None
    assert await storage_case.leftovers() == []


# --- URLs ------------------------------------------------------------------------------


async def test_public_url_uses_the_cdn_base_url(make_storage_case: CaseFactory) -> None:
    case = await make_storage_case(CDN_BASE_URL="https://cdn.example.com/media/")

    url = await case.storage.url(case.key("logo.png"), public=True)

    assert url == f"https://cdn.example.com/media/{case.prefix}/logo.png"


async def test_public_url_without_a_cdn_is_the_plain_object_url(storage_case: StorageCase) -> None:
    url = await storage_case.storage.url(storage_case.key("logo.png"), public=True)

    if storage_case.seaweedfs is None:
        assert url == f"{API_URL}/media/{storage_case.prefix}/logo.png"
    else:
        endpoint, bucket = storage_case.seaweedfs.endpoint_url, storage_case.seaweedfs.bucket
        assert url == f"{endpoint}/{bucket}/{storage_case.prefix}/logo.png"


async def test_private_url_is_signed_even_with_a_cdn(make_storage_case: CaseFactory) -> None:
    case = await make_storage_case(CDN_BASE_URL="https://cdn.example.com")

    url = await case.storage.url(case.key("secret.ogg"), public=False)

    assert not url.startswith("https://cdn.example.com")
    assert ("X-Amz-Signature=" if case.backend == "s3" else "signature=") in url


# --- health ----------------------------------------------------------------------------


async def test_ping_passes_when_the_store_answers(storage_case: StorageCase) -> None:
    await storage_case.storage.ping()
