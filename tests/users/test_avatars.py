"""Avatars: an upload, a data URL or an image URL becomes metadata-free WebP squares in
storage, and the profile's `avatar` the public URL of the 256-pixel one. Bad images are
refused with their own answer and store nothing; replaced and purged avatars leave no
files behind."""

from __future__ import annotations

import asyncio
import io
import socket
from datetime import timedelta
from typing import Any

import anyio.to_thread
import httpx
import pytest
from asgi_lifespan import LifespanManager
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.service import purge_deleted_accounts
from beatmachine.core.config import Settings
from beatmachine.core.db import transaction
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.users import avatars
from beatmachine.users.models import User
from tests.core.apps import client_for
from tests.factories import Account, assert_error, register, validation_fields
from tests.http_receiver import Receiver, receiver_fixture  # noqa: F401 (the receiver fixture)
from tests.images import png_claiming
from tests.jobs import settle
from tests.seaweedfs import SeaweedFS
from tests.stored import listed
from tests.users.helpers import data_url

MAX_BYTES = 256 * 1024


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


MAX_PIXELS = 4_000_000
BOUNDARY = "avatar-boundary-51c2"
ON_BOTH_STORAGES = pytest.mark.parametrize("storage_backend", ["local", "s3"], indirect=True)


@pytest.fixture
def storage_backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "local")


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest, storage_backend: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "AVATAR_MAX_BYTES": MAX_BYTES,
        "AVATAR_MAX_PIXELS": MAX_PIXELS,
        "AVATAR_FETCH_TIMEOUT": 5,
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    if storage_backend == "s3":
        seaweedfs: SeaweedFS = request.getfixturevalue("seaweedfs")
        overrides |= seaweedfs.settings()
    return overrides


# --- images and requests ---------------------------------------------------------------


def image_bytes(
    width: int = 300, height: int = 200, image_format: str = "PNG", **options: Any
) -> bytes:
    """Left half red, right half blue."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    out = io.BytesIO()
    image.save(out, format=image_format, **options)
    return out.getvalue()


def multipart(data: bytes, filename: str = "me.png", content_type: str = "image/png") -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


MULTIPART_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def upload(
    client: httpx.AsyncClient, account: Account, data: bytes, **part: str
) -> httpx.Response:
    return await client.put(
        "/api/users/me/avatar",
        content=multipart(data, **part),
        headers=account.headers | MULTIPART_HEADERS,
    )


async def put_avatar(
    client: httpx.AsyncClient, account: Account, avatar: str | None
) -> httpx.Response:
    return await client.put("/api/users/me", headers=account.headers, json={"avatar": avatar})


async def me(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.get("/api/users/me", headers=account.headers)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()["data"]
    return data


# --- what storage and the database hold ------------------------------------------------


async def avatar_row(db: AsyncSession, user_id: str) -> dict[str, Any]:
    await db.rollback()
    row = await db.execute(
        select(User.avatar, User.avatar_key, User.avatar_source, User.avatar_error).where(
            User.id == user_id
        )
    )
    return dict(row.mappings().one())


@pytest.fixture
def stored(request: pytest.FixtureRequest, settings: Settings) -> Any:
    """The keys stored under `avatars/<user id>/`, on the test's storage."""
    seaweedfs = request.getfixturevalue("seaweedfs") if settings.storage_backend == "s3" else None

    async def keys(user_id: str) -> list[str]:
        return await anyio.to_thread.run_sync(listed, settings, seaweedfs, f"avatars/{user_id}/")

    return keys


def files_of(key: str) -> list[str]:
    return sorted(f"{key}/{size}.webp" for size in avatars.SIZES)


async def read(state: AppState, key: str) -> bytes:
    async with await state.storage.open(key) as stream:
        return b"".join([chunk async for chunk in stream])


# --- taking an image -------------------------------------------------------------------


@ON_BOTH_STORAGES
async def test_an_uploaded_image_becomes_the_avatar_in_three_square_sizes(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)

    response = await upload(client, account, image_bytes(300, 200))

    assert response.status_code == 200
    data = response.json()["data"]
    row = await avatar_row(db, account.id)
    assert row["avatar_key"].startswith(f"avatars/{account.id}/")
    assert data["avatar"] == await state.storage.url(f"{row['avatar_key']}/256.webp", public=True)
    assert data["avatarFetch"] is None
    assert row["avatar"] == data["avatar"]
    assert await stored(account.id) == files_of(row["avatar_key"])
    for size in avatars.SIZES:
        image = Image.open(io.BytesIO(await read(state, f"{row['avatar_key']}/{size}.webp")))
        assert (image.format, image.size) == ("WEBP", (size, size))
        # The centred square of a red | blue picture: red on the left, blue on the right.
        rgb = image.convert("RGB")
        assert rgb.getpixel((size // 8, size // 2))[0] > 200
        assert rgb.getpixel((size - size // 8, size // 2))[2] > 200


@ON_BOTH_STORAGES
async def test_avatar_files_are_public_webp_cached_for_a_year(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    account = await register(client)
    await upload(client, account, image_bytes())
    key = (await avatar_row(db, account.id))["avatar_key"]

    info = await state.storage.head(f"{key}/256.webp")

    assert info is not None
    assert (info.public, info.content_type, info.cache_control) == (
        True,
        "image/webp",
        "public, max-age=31536000, immutable",
    )


async def test_the_avatar_url_serves_the_image_to_anyone(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    avatar = (await upload(client, account, image_bytes())).json()["data"]["avatar"]

    response = await client.get(httpx.URL(avatar).path)

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(response.content)).size == (256, 256)


@ON_BOTH_STORAGES
async def test_a_data_url_avatar_is_stored_like_an_upload(
    client: httpx.AsyncClient, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)

    response = await put_avatar(
        client, account, data_url("image/jpeg", image_bytes(image_format="JPEG"))
    )

    assert response.status_code == 200
    row = await avatar_row(db, account.id)
    assert response.json()["data"]["avatar"] == row["avatar"]
    assert row["avatar"].endswith(f"{row['avatar_key']}/256.webp")
    assert await stored(account.id) == files_of(row["avatar_key"])


async def test_no_metadata_and_nothing_after_the_image_survives(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    account = await register(client)
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (59.0, 54.0, 0.0)}  # GPS latitude
    photo = image_bytes(image_format="JPEG", exif=exif.tobytes())
    polyglot = photo + b"<html><script>alert(1)</script></html>"

    response = await upload(client, account, polyglot, filename="me.jpg", content_type="image/jpeg")

    assert response.status_code == 200
    key = (await avatar_row(db, account.id))["avatar_key"]
    for size in avatars.SIZES:
        raw = await read(state, f"{key}/{size}.webp")
        assert b"SecretCam" not in raw and b"<script" not in raw and b"EXIF" not in raw
        assert not Image.open(io.BytesIO(raw)).getexif()


async def test_lists_name_the_author_by_avatar_url_never_by_image_bytes(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    avatar = (await put_avatar(client, account, data_url("image/png", image_bytes()))).json()[
        "data"
    ]["avatar"]

    response = await client.get(f"/api/users/{account.id}")

    assert response.json()["data"]["avatar"] == avatar
    assert not avatar.startswith("data:") and len(avatar) < 200


# --- replacing and removing ------------------------------------------------------------


@ON_BOTH_STORAGES
async def test_replacing_the_avatar_removes_the_old_files(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)
    await upload(client, account, image_bytes())
    old_key = (await avatar_row(db, account.id))["avatar_key"]

    response = await upload(client, account, image_bytes(120, 120))
    await settle(state)

    new_key = (await avatar_row(db, account.id))["avatar_key"]
    assert response.status_code == 200 and new_key != old_key
    assert await stored(account.id) == files_of(new_key)


@ON_BOTH_STORAGES
async def test_deleting_the_avatar_removes_its_files(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)
    await upload(client, account, image_bytes())

    response = await client.delete("/api/users/me/avatar", headers=account.headers)
    await settle(state)

    assert response.status_code == 200
    assert response.json()["data"]["avatar"] is None
    assert await avatar_row(db, account.id) == dict.fromkeys(
        ("avatar", "avatar_key", "avatar_source", "avatar_error")
    )
    assert await stored(account.id) == []


async def test_an_avatar_set_to_null_removes_its_files(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)
    await upload(client, account, image_bytes())

    response = await put_avatar(client, account, None)
    await settle(state)

    assert response.json()["data"]["avatar"] is None
    assert await stored(account.id) == []


@ON_BOTH_STORAGES
async def test_purging_the_account_removes_its_avatar_files(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)
    await upload(client, account, image_bytes())
    await db.execute(
        update(User)
        .where(User.id == account.id)
        .values(deletion_scheduled_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()

    assert await purge_deleted_accounts(state) == 1
    await settle(state)

    assert await stored(account.id) == []


async def test_two_uploads_at_once_leave_the_files_of_one_avatar(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)

    responses = await asyncio.gather(
        upload(client, account, image_bytes(100, 100)), upload(client, account, image_bytes(90, 90))
    )
    await settle(state)

    assert [response.status_code for response in responses] == [200, 200]
    key = (await avatar_row(db, account.id))["avatar_key"]
    assert await stored(account.id) == files_of(key)


# --- bad images ------------------------------------------------------------------------


def _bad_uploads() -> list[Any]:
    png = image_bytes()
    cases: list[tuple[str, bytes, str, int, str]] = [
        (
            "svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "html",
            b"<!DOCTYPE html><html><body>hi</body></html>",
            "image/png",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        ("pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "image/png", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (
            "bomb_20000_by_20000",
            png_claiming(20_000, 20_000),
            "image/png",
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        ("over_the_pixel_limit", image_bytes(2001, 2000), "image/png", 413, "PAYLOAD_TOO_LARGE"),
        ("truncated_png", png[: len(png) // 2], "image/png", 422, "VALIDATION_ERROR"),
        ("zero_length", b"", "image/png", 422, "VALIDATION_ERROR"),
    ]
    return [
        pytest.param(data, kind, status, code, id=name) for name, data, kind, status, code in cases
    ]


@pytest.mark.parametrize(("data", "content_type", "status", "code"), _bad_uploads())
async def test_a_bad_upload_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    db: AsyncSession,
    stored: Any,
    data: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    account = await register(client)
    before = await avatar_row(db, account.id)

    response = await upload(client, account, data, content_type=content_type)

    assert_error(response, status, code)
    assert await avatar_row(db, account.id) == before
    assert await stored(account.id) == []


async def test_a_bad_upload_keeps_the_avatar_there_was(
    client: httpx.AsyncClient, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)
    await upload(client, account, image_bytes())
    before = await avatar_row(db, account.id)

    response = await upload(client, account, b"<html></html>")

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await avatar_row(db, account.id) == before
    assert await stored(account.id) == files_of(before["avatar_key"])


async def test_an_upload_over_the_byte_limit_is_refused_while_it_arrives(
    client: httpx.AsyncClient, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)
    sent: list[int] = []
    head = multipart(b"")[: -len(f"\r\n--{BOUNDARY}--\r\n")]

    async def body() -> Any:
        yield head
        for _ in range(1000):  # 16 MB if it were all read
            sent.append(16 * 1024)
            yield b"\x89PNG" + b"x" * (16 * 1024 - 4)

    response = await client.put(
        "/api/users/me/avatar", content=body(), headers=account.headers | MULTIPART_HEADERS
    )

    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"]["maxBytes"] == MAX_BYTES
    assert sum(sent) < 2 * MAX_BYTES
    assert await stored(account.id) == []


async def test_an_upload_that_is_not_multipart_is_unsupported(client: httpx.AsyncClient) -> None:
    account = await register(client)

    response = await client.put(
        "/api/users/me/avatar",
        content=image_bytes(),
        headers=account.headers | {"Content-Type": "image/png"},
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_an_upload_without_a_token_is_auth_required(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/api/users/me/avatar", content=multipart(image_bytes()), headers=MULTIPART_HEADERS
    )

    assert_error(response, 401, "AUTH_REQUIRED")


@pytest.mark.parametrize(
    ("avatar", "status", "code"),
    [
        (data_url("image/png", image_bytes(image_format="JPEG")), 415, "UNSUPPORTED_MEDIA_TYPE"),
        (
            data_url("image/png", b"hello, this is not an image at all"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (data_url("image/gif", png_claiming(20_000, 20_000)), 413, "PAYLOAD_TOO_LARGE"),
    ],
    ids=["jpeg_declared_as_png", "text_declared_as_png", "bomb"],
)
async def test_a_bad_data_url_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, db: AsyncSession, stored: Any, avatar: str, status: int, code: str
) -> None:
    account = await register(client)
    before = await avatar_row(db, account.id)

    response = await put_avatar(client, account, avatar)

    assert_error(response, status, code)
    assert await avatar_row(db, account.id) == before
    assert await stored(account.id) == []


async def test_a_data_url_over_the_byte_limit_is_too_large(
    client: httpx.AsyncClient, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)
    heavy = image_bytes(320, 320, compress_level=0)
    assert len(heavy) > MAX_BYTES

    response = await put_avatar(client, account, data_url("image/png", heavy))

    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"]["maxBytes"] == MAX_BYTES
    assert await stored(account.id) == []


# --- avatar URLs -----------------------------------------------------------------------


def avatar_url(receiver: Receiver, name: str = "me.png") -> str:
    return f"http://127.0.0.1:{receiver.port}/{name}"


@ON_BOTH_STORAGES
async def test_an_avatar_url_is_fetched_by_a_job_and_stored(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any, receiver: Receiver
) -> None:
    receiver.answer(200, image_bytes(), headers={"Content-Type": "image/png"})
    account = await register(client)
    url = avatar_url(receiver)

    response = await put_avatar(client, account, url)

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["avatar"] is None
    assert data["avatarFetch"] == {"url": url, "status": "pending", "error": None}
    await settle(state)
    profile = await me(client, account)
    row = await avatar_row(db, account.id)
    assert profile["avatarFetch"] is None
    assert profile["avatar"] == row["avatar"] and row["avatar"].endswith("/256.webp")
    assert await stored(account.id) == files_of(row["avatar_key"])
    [request] = receiver.requests
    assert (request.method, request.path) == ("GET", "/me.png")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status": 404, "body": b"missing"}, "answered HTTP 404"),
        (
            {"status": 302, "body": b"", "headers": {"Location": "http://10.0.0.1/me.png"}},
            "answered HTTP 302",
        ),
        (
            {"status": 200, "body": b"<html>not an image</html>"},
            "the image is not a PNG, JPEG, WebP or GIF image",
        ),
        (
            {"status": 200, "body": b"\x89PNG" + b"x" * MAX_BYTES},
            f"the image is larger than {MAX_BYTES} bytes",
        ),
        ({"status": 200, "body": b""}, "the image is empty"),
        (
            {"status": 200, "body": png_claiming(20_000, 20_000)},
            f"the image has more than {MAX_PIXELS} pixels",
        ),
    ],
    ids=["not_found", "redirect", "html", "over_the_byte_limit", "empty", "bomb"],
)
async def test_an_avatar_url_that_gives_no_image_fails_with_the_reason(
    client: httpx.AsyncClient,
    state: AppState,
    db: AsyncSession,
    stored: Any,
    receiver: Receiver,
    answer: dict[str, Any],
    error: str,
) -> None:
    receiver.answer(**answer)
    account = await register(client)
    url = avatar_url(receiver)

    await put_avatar(client, account, url)
    await settle(state)

    profile = await me(client, account)
    assert profile["avatar"] is None
    assert profile["avatarFetch"] == {"url": url, "status": "failed", "error": error}
    assert await stored(account.id) == []
    assert len(receiver.requests) == 1  # a redirect is not followed


async def test_an_avatar_url_whose_host_is_a_private_address_is_refused_at_once(
    make_app: Any,
) -> None:
    # Without OUTBOUND_ALLOWED_NETWORKS, loopback is out of reach.
    app = make_app(OUTBOUND_ALLOWED_NETWORKS="")
    async with LifespanManager(app), client_for(app) as http:
        account = await register(http)

        response = await put_avatar(http, account, "http://127.0.0.1:9/me.png")

    assert validation_fields(response) == {"avatar"}


async def test_an_avatar_url_resolving_to_a_private_address_fails_without_details(
    make_app: Any, receiver: Receiver
) -> None:
    app = make_app(OUTBOUND_ALLOWED_NETWORKS="")
    state: AppState = app.state.services
    async with LifespanManager(app), client_for(app) as http:
        account = await register(http)
        await put_avatar(http, account, f"http://localhost:{receiver.port}/me.png")
        await settle(state)
        profile = await me(http, account)

    assert profile["avatarFetch"] == {
        "url": f"http://localhost:{receiver.port}/me.png",
        "status": "failed",
        "error": "is not an address avatars may be fetched from",
    }
    assert receiver.requests == []


async def test_a_fetch_that_is_no_longer_wanted_stores_nothing(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)
    await upload(client, account, image_bytes())
    before = await avatar_row(db, account.id)
    renditions = await avatars.render(image_bytes(80, 80), state.settings)

    # What the job does once its image is in hand, for a fetch the profile no longer
    # waits for (a later avatar, or a later request of the same URL).
    await avatars._take(state, account.id, "avf_superseded", renditions)

    assert await avatar_row(db, account.id) == before
    assert await stored(account.id) == files_of(before["avatar_key"])


async def test_the_same_url_sent_again_is_fetched_for_the_latest_request(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, receiver: Receiver
) -> None:
    receiver.answer(404, b"not yet")
    account = await register(client)
    url = avatar_url(receiver)
    await put_avatar(client, account, url)
    await settle(state)
    receiver.answer(200, image_bytes())

    await put_avatar(client, account, url)
    await settle(state)

    profile = await me(client, account)
    assert profile["avatarFetch"] is None
    assert profile["avatar"] == (await avatar_row(db, account.id))["avatar"]


async def test_files_of_a_change_that_rolls_back_are_removed(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)
    renditions = await avatars.render(image_bytes(), state.settings)

    with pytest.raises(RuntimeError):
        async with transaction(state.sessionmaker) as session:
            user = await session.get(User, account.id)
            assert user is not None
            await avatars.point(
                session, state, user, await avatars.store(state, user.id, renditions)
            )
            assert len(await stored(account.id)) == len(avatars.SIZES)
            raise RuntimeError("the commit never comes")

    assert (await avatar_row(db, account.id))["avatar_key"] is None
    assert await stored(account.id) == []


async def test_an_upload_while_storage_is_down_is_unavailable_and_changes_nothing(
    make_app: Any,
) -> None:
    app = make_app(
        STORAGE_BACKEND="s3",
        AWS_S3_BUCKET="avatars",
        AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}",
        AWS_ACCESS_KEY_ID="key",
        AWS_SECRET_ACCESS_KEY="secret",
        STORAGE_TIMEOUT=2,
    )
    async with LifespanManager(app), client_for(app) as http:
        account = await register(http)

        response = await upload(http, account, image_bytes())
        profile = await me(http, account)

    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert profile["avatar"] is None


async def test_an_upload_declaring_a_length_over_the_limit_is_refused_at_once(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)

    response = await upload(client, account, b"\x89PNG" + b"x" * (MAX_BYTES + 70_000))

    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"maxBytes": MAX_BYTES}


async def test_a_later_avatar_supersedes_a_pending_url(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any, receiver: Receiver
) -> None:
    receiver.answer(200, image_bytes())
    account = await register(client)

    await put_avatar(client, account, avatar_url(receiver))
    replaced = await upload(client, account, image_bytes(80, 80))
    await settle(state)

    row = await avatar_row(db, account.id)
    assert row["avatar"] == replaced.json()["data"]["avatar"]
    assert row["avatar_source"] is None
    assert await stored(account.id) == files_of(row["avatar_key"])


# --- inline avatars of before ----------------------------------------------------------


async def test_inline_avatars_of_before_are_moved_into_storage(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any
) -> None:
    kept = await register(client)
    broken = await register(client)
    garbled = await register(client)
    leaving = await register(client)
    inline = {
        kept.id: data_url("image/png", image_bytes()),
        broken.id: data_url("image/png", b"\x89PNG\r\n\x1a\nnot really"),
        garbled.id: "data:image/png;base64,@@not base64@@",
        leaving.id: data_url("image/png", image_bytes()),
    }
    for user_id, source in inline.items():
        # As migration 0013 leaves an inline avatar.
        await db.execute(
            update(User).where(User.id == user_id).values(avatar=None, avatar_source=source)
        )
    await db.execute(
        update(User).where(User.id == leaving.id).values(deletion_scheduled_at=utcnow())
    )
    await db.commit()

    assert await avatars.move_inline(state) == 3

    row = await avatar_row(db, kept.id)
    assert row["avatar"].endswith(f"{row['avatar_key']}/256.webp")
    assert row["avatar_source"] is None
    assert await stored(kept.id) == files_of(row["avatar_key"])
    for user_id in (broken.id, garbled.id):
        assert await avatar_row(db, user_id) == dict.fromkeys(
            ("avatar", "avatar_key", "avatar_source", "avatar_error")
        )
    assert (await avatar_row(db, leaving.id))["avatar_source"] == inline[leaving.id]
    assert await avatars.move_inline(state) == 0
