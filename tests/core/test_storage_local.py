"""What only the local back end does: its folder's boundaries, and `/media` with signed URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from beatmachine.core.errors import ValidationFailed, install_error_handlers
from beatmachine.core.storage import (
    LocalStorage,
    StorageObjectNotFound,
    StorageUnavailable,
    create_storage,
)
from beatmachine.core.storage._local import derive_url_key
from beatmachine.core.storage.routes import media_router
from tests.core.storage_support import API_URL, JWT_SECRET, storage_settings

URL_TTL = 600
REFUSED = "This file link is not valid or has expired."


class Clock:
    """The storage's idea of now, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def local(tmp_path: Path, clock: Clock) -> LocalStorage:
    return LocalStorage(
        tmp_path / "media",
        api_url=API_URL,
        cdn_base_url="",
        url_key=derive_url_key(JWT_SECRET),
        url_ttl=URL_TTL,
        clock=clock,
    )


@pytest.fixture
async def client(local: LocalStorage) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that mounts the media route, with the real error handlers."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(media_router(local))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=API_URL) as http:
        yield http


def assert_envelope(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"success": False, "error": {"code": code, "message": message}}


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


# --- the folder's boundaries -----------------------------------------------------------


async def test_put_writes_nothing_through_a_link_out_of_the_folder(
    local: LocalStorage, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    local.root.mkdir()
    (local.root / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValidationFailed):
        await local.put("link/sub/x.txt", b"x", content_type="text/plain", public=True)

    assert list(outside.iterdir()) == []


async def test_open_does_not_follow_a_link_out_of_the_folder(
    local: LocalStorage, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    local.root.mkdir()
    (local.root / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(StorageObjectNotFound):
        await local.open("link/secret.txt")
    assert await local.head("link/secret.txt") is None


async def test_put_refuses_a_key_that_clashes_with_a_folder(local: LocalStorage) -> None:
    await local.put("a/b.txt", b"x", content_type="text/plain", public=True)

    with pytest.raises(ValidationFailed):
        await local.put("a", b"y", content_type="text/plain", public=True)

    assert (local.root / "a").is_dir()
    assert sorted(path.name for path in (local.root / "a").iterdir()) == [
        ".b.txt.meta.json",
        "b.txt",
    ]


async def test_unusable_folder_makes_put_unavailable(local: LocalStorage) -> None:
    local.root.write_text("a file where the folder should be")

    with pytest.raises(StorageUnavailable):
        await local.put("a.txt", b"x", content_type="text/plain", public=True)


async def test_unusable_folder_makes_ping_unavailable(local: LocalStorage) -> None:
    local.root.write_text("a file where the folder should be")

    with pytest.raises(StorageUnavailable):
        await local.ping()


async def test_url_signing_key_is_derived_from_the_secret_not_the_secret_itself(
    tmp_path: Path,
) -> None:
    storage = create_storage(storage_settings(tmp_path / "var", None))
    assert isinstance(storage, LocalStorage)

    query = parse_qs(urlsplit(await storage.url("a/b.ogg", public=False)).query)

    expires = query["expires"][0]
    raw = hmac.new(JWT_SECRET.encode(), f"a/b.ogg\n{expires}".encode(), hashlib.sha256).digest()
    assert query["signature"] != [base64.urlsafe_b64encode(raw).rstrip(b"=").decode()]
    assert query["signature"] == [storage.signature("a/b.ogg", int(expires))]


# --- GET and HEAD /media ---------------------------------------------------------------


async def test_media_route_serves_a_public_object_with_its_headers(
    local: LocalStorage, client: httpx.AsyncClient
) -> None:
    data = b"OggS" + bytes(range(256)) * 4096  # 1 MiB and a bit: several chunks
    stored = await local.put(
        "sounds/clave.ogg", data, content_type="audio/ogg", public=True, cache_control="max-age=60"
    )

    response = await client.get(await local.url("sounds/clave.ogg", public=True))

    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "audio/ogg"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["cache-control"] == "max-age=60"
    assert response.headers["etag"] == stored.etag
    assert parsedate_to_datetime(response.headers["last-modified"]) == stored.last_modified.replace(
        microsecond=0
    )
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_media_route_serves_a_private_object_with_a_valid_signature(
    local: LocalStorage, client: httpx.AsyncClient, clock: Clock
) -> None:
    await local.put("private/take.ogg", b"OggS mine", content_type="audio/ogg", public=False)
    url = await local.url("private/take.ogg", public=False)

    response = await client.get(url)

    assert response.status_code == 200
    assert response.content == b"OggS mine"
    assert response.headers["cache-control"] == "private"
    assert parse_qs(urlsplit(url).query)["expires"] == [str(int(clock.now) + URL_TTL)]


async def test_media_route_refuses_a_private_object_without_a_signature(
    local: LocalStorage, client: httpx.AsyncClient
) -> None:
    await local.put("private/take.ogg", b"OggS mine", content_type="audio/ogg", public=False)

    response = await client.get(await local.url("private/take.ogg", public=True))

    assert_envelope(response, 403, "UNAUTHORIZED", REFUSED)


async def test_media_route_refuses_a_wrong_signature(
    local: LocalStorage, client: httpx.AsyncClient
) -> None:
    await local.put("private/take.ogg", b"OggS mine", content_type="audio/ogg", public=False)
    url = await local.url("private/take.ogg", public=False)
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    wrong = ("A" if signature[0] != "A" else "B") + signature[1:]

    response = await client.get(with_query(url, signature=wrong))

    assert_envelope(response, 403, "UNAUTHORIZED", REFUSED)


async def test_media_route_refuses_a_later_expiry_than_was_signed(
    local: LocalStorage, client: httpx.AsyncClient, clock: Clock
) -> None:
    await local.put("private/take.ogg", b"OggS mine", content_type="audio/ogg", public=False)
    url = await local.url("private/take.ogg", public=False)

    response = await client.get(with_query(url, expires=str(int(clock.now) + 10 * URL_TTL)))

    assert_envelope(response, 403, "UNAUTHORIZED", REFUSED)


async def test_media_route_refuses_a_signature_made_for_another_key(
    local: LocalStorage, client: httpx.AsyncClient
) -> None:
    await local.put("private/a.ogg", b"a", content_type="audio/ogg", public=False)
    await local.put("private/b.ogg", b"b", content_type="audio/ogg", public=False)
    url_of_a = await local.url("private/a.ogg", public=False)

    response = await client.get(url_of_a.replace("/private/a.ogg", "/private/b.ogg"))

    assert_envelope(response, 403, "UNAUTHORIZED", REFUSED)


async def test_media_route_refuses_an_expired_signature(
    local: LocalStorage, client: httpx.AsyncClient, clock: Clock
) -> None:
    await local.put("private/take.ogg", b"OggS mine", content_type="audio/ogg", public=False)
    url = await local.url("private/take.ogg", public=False, expires_in=60)
    assert (await client.get(url)).status_code == 200

    clock.now += 60

    assert_envelope(await client.get(url), 403, "UNAUTHORIZED", REFUSED)


async def test_media_route_answers_404_for_a_missing_object(client: httpx.AsyncClient) -> None:
    response = await client.get("/media/nothing/here.ogg")

    assert_envelope(response, 404, "NOT_FOUND", "No such file.")


async def test_media_route_never_serves_a_sidecar_file(
    local: LocalStorage, client: httpx.AsyncClient
) -> None:
    await local.put("sounds/clave.ogg", b"OggS", content_type="audio/ogg", public=True)
    assert (local.root / "sounds" / ".clave.ogg.meta.json").is_file()

    response = await client.get("/media/sounds/.clave.ogg.meta.json")

    assert_envelope(response, 404, "NOT_FOUND", "No such file.")


async def test_media_route_never_serves_a_file_out_of_its_folder(
    local: LocalStorage, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    local.root.mkdir()

    response = await client.get("/media/%2E%2E/secret.txt")

    assert_envelope(response, 404, "NOT_FOUND", "No such file.")


async def test_media_route_head_answers_the_headers_without_a_body(
    local: LocalStorage, client: httpx.AsyncClient
) -> None:
    stored = await local.put("sounds/clave.ogg", b"OggS1234", content_type="audio/ogg", public=True)

    response = await client.head("/media/sounds/clave.ogg")

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "8"
    assert response.headers["content-type"] == "audio/ogg"
    assert response.headers["etag"] == stored.etag


async def test_media_route_head_refuses_a_private_object_without_a_signature(
    local: LocalStorage, client: httpx.AsyncClient
) -> None:
    await local.put("private/take.ogg", b"OggS mine", content_type="audio/ogg", public=False)

    response = await client.head("/media/private/take.ogg")

    assert response.status_code == 403


async def test_media_route_answers_304_when_the_etag_matches(
    local: LocalStorage, client: httpx.AsyncClient
) -> None:
    stored = await local.put("sounds/clave.ogg", b"OggS1234", content_type="audio/ogg", public=True)

    response = await client.get("/media/sounds/clave.ogg", headers={"If-None-Match": stored.etag})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == stored.etag
