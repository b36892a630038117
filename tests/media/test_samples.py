"""/api/media/samples: one's audio samples, uploaded, checked, converted by a job to the
working form, listed, renamed and deleted; bad files get their answer and store nothing."""

from __future__ import annotations

import asyncio
import io
import math
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.service import purge_deleted_accounts
from beatmachine.core.config import Settings
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.media import samples
from beatmachine.media.models import Sample
from beatmachine.users.models import User
from tests.factories import Account, assert_error, register, validation_fields
from tests.jobs import settle
from tests.media.audio import encoded, make
from tests.seaweedfs import SeaweedFS
from tests.stored import listed

BOUNDARY = "sample-boundary-93ad"
MAX_BYTES = 2 * 1024 * 1024
QUOTA = 3 * 1024 * 1024
ON_BOTH_STORAGES = pytest.mark.parametrize("storage_backend", ["local", "s3"], indirect=True)
SAMPLE_KEYS = {
    "id",
    "name",
    "status",
    "error",
    "originalFilename",
    "format",
    "codec",
    "sizeBytes",
    "durationSeconds",
    "storedBytes",
    "lengthSamples",
    "loudnessLufs",
    "truePeakDbtp",
    "gainDb",
    "previewUrl",
    "createdAt",
    "updatedAt",
}


@pytest.fixture
def storage_backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "local")


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest, storage_backend: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "SAMPLE_MAX_BYTES": MAX_BYTES,
        "SAMPLE_MAX_SECONDS": 10,
        "SAMPLE_QUOTA_BYTES": QUOTA,
    }
    if storage_backend == "s3":
        seaweedfs: SeaweedFS = request.getfixturevalue("seaweedfs")
        overrides |= seaweedfs.settings()
    return overrides


@pytest.fixture
def stored(request: pytest.FixtureRequest, settings: Settings) -> Any:
    """The keys stored under `samples/<user id>/`, on the test's storage."""
    seaweedfs = request.getfixturevalue("seaweedfs") if settings.storage_backend == "s3" else None

    async def keys(user_id: str) -> list[str]:
        return await anyio.to_thread.run_sync(listed, settings, seaweedfs, f"samples/{user_id}/")

    return keys


def multipart(data: bytes, filename: str, content_type: str, name: str | None = None) -> bytes:
    body = b""
    if name is not None:
        body += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'
        ).encode()
    body += (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return body + data + f"\r\n--{BOUNDARY}--\r\n".encode()


async def upload(
    client: httpx.AsyncClient,
    account: Account,
    data: bytes,
    filename: str = "clave-0.wav",
    content_type: str = "audio/wav",
    name: str | None = None,
) -> httpx.Response:
    return await client.post(
        "/api/media/samples",
        content=multipart(data, filename, content_type, name),
        headers=account.headers | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


def hit(tmp_path: Path, kind: str = "wav", seconds: float = 0.3) -> bytes:
    return encoded(tmp_path, kind, seconds=seconds).read_bytes()


async def sample_rows(db: AsyncSession, owner_id: str) -> list[Sample]:
    await db.rollback()
    return list((await db.scalars(select(Sample).where(Sample.owner_id == owner_id))).all())


# --- taking a sample -------------------------------------------------------------------


@ON_BOTH_STORAGES
async def test_an_uploaded_sample_is_converted_by_a_job_to_the_working_form(
    client: httpx.AsyncClient, state: AppState, stored: Any, tmp_path: Path
) -> None:
    account = await register(client)

    response = await upload(client, account, hit(tmp_path, "mp3"), "clave-0.mp3", "audio/mpeg")

    assert response.status_code == 201
    data = response.json()["data"]
    assert set(data) == SAMPLE_KEYS
    assert data["id"].startswith("smp_")
    assert (data["name"], data["status"], data["format"], data["codec"]) == (
        "clave-0",
        "pending",
        "mp3",
        "mp3",
    )
    assert data["durationSeconds"] == pytest.approx(0.3, abs=0.05)
    await settle(state)
    ready = (await client.get(f"/api/media/samples/{data['id']}", headers=account.headers)).json()[
        "data"
    ]
    assert ready["status"] == "ready" and ready["error"] is None
    assert ready["lengthSamples"] == pytest.approx(0.3 * 44100 + 882, abs=1200)
    assert ready["loudnessLufs"] <= -16.0 + 0.3
    assert ready["truePeakDbtp"] <= -1.0 + 0.2
    assert math.isclose(ready["loudnessLufs"], -16.0, abs_tol=0.3) or math.isclose(
        ready["truePeakDbtp"], -1.0, abs_tol=0.2
    )
    prefix = f"samples/{account.id}/{data['id']}"
    assert await stored(account.id) == [
        f"{prefix}/original",
        f"{prefix}/preview.mp3",
        f"{prefix}/work.wav",
    ]
    assert ready["storedBytes"] > ready["sizeBytes"]
    assert ready["previewUrl"]


async def test_the_preview_link_serves_the_mp3(
    client: httpx.AsyncClient, state: AppState, tmp_path: Path
) -> None:
    account = await register(client)
    sample_id = (await upload(client, account, hit(tmp_path))).json()["data"]["id"]
    await settle(state)
    url = (await client.get(f"/api/media/samples/{sample_id}", headers=account.headers)).json()[
        "data"
    ]["previewUrl"]

    response = await client.get(httpx.URL(url).raw_path.decode())

    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"


async def test_the_name_field_names_the_sample(client: httpx.AsyncClient, tmp_path: Path) -> None:
    account = await register(client)

    response = await upload(
        client, account, hit(tmp_path), "recording 12.wav", name="italian:instructor-5"
    )

    assert response.status_code == 201
    assert response.json()["data"]["name"] == "italian:instructor-5"
    assert response.json()["data"]["originalFilename"] == "recording 12.wav"


async def test_a_silent_sample_fails_with_the_reason_and_can_be_retried(
    client: httpx.AsyncClient, state: AppState, tmp_path: Path
) -> None:
    account = await register(client)
    silence = make(tmp_path / "quiet.wav", source="anullsrc=r=44100:cl=mono", seconds=0.3)
    sample_id = (await upload(client, account, silence.read_bytes())).json()["data"]["id"]
    await settle(state)
    failed = (await client.get(f"/api/media/samples/{sample_id}", headers=account.headers)).json()

    retried = await client.post(f"/api/media/samples/{sample_id}/retry", headers=account.headers)

    assert (failed["data"]["status"], failed["data"]["error"]) == ("failed", "the sample is silent")
    assert retried.status_code == 202
    assert (retried.json()["data"]["status"], retried.json()["data"]["error"]) == ("pending", None)
    await settle(state)
    again = (await client.get(f"/api/media/samples/{sample_id}", headers=account.headers)).json()
    assert again["data"]["status"] == "failed"


async def test_a_ready_sample_cannot_be_retried(
    client: httpx.AsyncClient, state: AppState, tmp_path: Path
) -> None:
    account = await register(client)
    sample_id = (await upload(client, account, hit(tmp_path))).json()["data"]["id"]
    await settle(state)

    response = await client.post(f"/api/media/samples/{sample_id}/retry", headers=account.headers)

    assert_error(response, 409, "CONFLICT")


# --- bad files -------------------------------------------------------------------------


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("png_renamed_wav", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("mp3_named_and_typed_flac", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("polyglot_wav", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("truncated_wav", 422, "VALIDATION_ERROR"),
        ("zero_length", 422, "VALIDATION_ERROR"),
        ("two_hours", 413, "PAYLOAD_TOO_LARGE"),
    ],
)
async def test_a_bad_file_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    db: AsyncSession,
    stored: Any,
    tmp_path: Path,
    case: str,
    status: int,
    code: str,
) -> None:
    wav = hit(tmp_path)
    files: dict[str, tuple[bytes, str, str]] = {
        "png_renamed_wav": (_png(), "clave-0.wav", "audio/wav"),
        "mp3_named_and_typed_flac": (hit(tmp_path, "mp3"), "clave-0.flac", "audio/flac"),
        "polyglot_wav": (wav + b"PK\x03\x04" + b"\x00" * 60, "clave-0.wav", "audio/wav"),
        "truncated_wav": (wav[: len(wav) // 2], "clave-0.wav", "audio/wav"),
        "zero_length": (b"", "clave-0.wav", "audio/wav"),
    }
    if case == "two_hours":
        long = make(
            tmp_path / "long.flac",
            source="anullsrc=r=1000:cl=mono",
            seconds=7200,
            options=["-c:a", "flac", "-compression_level", "0"],
        )
        files[case] = (long.read_bytes(), "clave-0.flac", "audio/flac")
    account = await register(client)
    data, filename, content_type = files[case]

    response = await upload(client, account, data, filename, content_type)

    assert_error(response, status, code)
    assert await sample_rows(db, account.id) == []
    assert await stored(account.id) == []


async def test_a_file_over_the_byte_limit_is_refused_while_it_arrives(
    client: httpx.AsyncClient, db: AsyncSession, stored: Any
) -> None:
    account = await register(client)
    sent: list[int] = []
    head = multipart(b"", "clave-0.wav", "audio/wav")[: -len(f"\r\n--{BOUNDARY}--\r\n")]

    async def body() -> Any:
        yield head
        for _ in range(2000):  # 32 MB if it were all read
            sent.append(16 * 1024)
            yield b"\x00" * (16 * 1024)

    response = await client.post(
        "/api/media/samples",
        content=body(),
        headers=account.headers | {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )

    assert assert_error(response, 413, "PAYLOAD_TOO_LARGE")["details"]["maxBytes"] == MAX_BYTES
    assert sum(sent) < MAX_BYTES + 256 * 1024
    assert await sample_rows(db, account.id) == []


@pytest.mark.parametrize(
    "name", ["../clave-0", "clave/0", "clave-0/..", "Clave-0", "clave", "x" * 101 + "-0"]
)
async def test_a_bad_sample_name_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, db: AsyncSession, stored: Any, tmp_path: Path, name: str
) -> None:
    account = await register(client)

    response = await upload(client, account, hit(tmp_path), name=name)

    assert validation_fields(response) == {"name"}
    assert await sample_rows(db, account.id) == []
    assert await stored(account.id) == []


async def test_a_name_already_used_is_a_conflict(
    client: httpx.AsyncClient, db: AsyncSession, tmp_path: Path
) -> None:
    account = await register(client)
    await upload(client, account, hit(tmp_path))

    response = await upload(client, account, hit(tmp_path))

    assert_error(response, 409, "CONFLICT")
    assert len(await sample_rows(db, account.id)) == 1


async def test_an_upload_past_the_quota_is_refused_and_the_quota_is_shown(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, tmp_path: Path
) -> None:
    account = await register(client)
    big = encoded(tmp_path, "wav", seconds=9, stem="big").read_bytes()  # about 794 KB
    for pitch in range(2):
        assert (await upload(client, account, big, f"conga-{pitch}.wav")).status_code == 201
        await settle(state)  # converted: it keeps its original, working form and preview

    refused = await upload(client, account, big, "conga-2.wav")
    listing = (await client.get("/api/media/samples", headers=account.headers)).json()["data"]

    used = sum(item["storedBytes"] for item in listing["samples"])
    assert used + len(big) > QUOTA
    error = assert_error(refused, 413, "QUOTA_EXCEEDED")
    assert error["details"] == {"usedBytes": used, "limitBytes": QUOTA, "sizeBytes": len(big)}
    assert listing["quota"] == {"usedBytes": used, "limitBytes": QUOTA}
    assert len(await sample_rows(db, account.id)) == 2


# --- keeping samples -------------------------------------------------------------------


async def test_samples_are_listed_newest_first_and_only_to_their_owner(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    account = await register(client)
    other = await register(client)
    first = (await upload(client, account, hit(tmp_path), "clave-0.wav")).json()["data"]["id"]
    second = (await upload(client, account, hit(tmp_path), "clave-1.wav")).json()["data"]["id"]

    mine = (await client.get("/api/media/samples", headers=account.headers)).json()["data"]
    theirs = (await client.get("/api/media/samples", headers=other.headers)).json()["data"]
    peek = await client.get(f"/api/media/samples/{first}", headers=other.headers)

    assert [item["id"] for item in mine["samples"]] == [second, first]
    assert mine["pagination"] == {"page": 1, "limit": 20, "total": 2, "pages": 1}
    assert theirs["samples"] == []
    assert_error(peek, 404, "SAMPLE_NOT_FOUND")


async def test_a_sample_can_be_renamed(client: httpx.AsyncClient, tmp_path: Path) -> None:
    account = await register(client)
    sample_id = (await upload(client, account, hit(tmp_path))).json()["data"]["id"]

    response = await client.put(
        f"/api/media/samples/{sample_id}", headers=account.headers, json={"name": "cowbell-2"}
    )

    assert response.status_code == 200
    assert response.json()["data"]["name"] == "cowbell-2"


async def test_renaming_to_a_name_in_use_is_a_conflict(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    account = await register(client)
    await upload(client, account, hit(tmp_path), "clave-0.wav")
    sample_id = (await upload(client, account, hit(tmp_path), "clave-1.wav")).json()["data"]["id"]

    response = await client.put(
        f"/api/media/samples/{sample_id}", headers=account.headers, json={"name": "clave-0"}
    )

    assert_error(response, 409, "CONFLICT")


@ON_BOTH_STORAGES
async def test_deleting_a_sample_removes_its_files(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any, tmp_path: Path
) -> None:
    account = await register(client)
    sample_id = (await upload(client, account, hit(tmp_path))).json()["data"]["id"]
    await settle(state)

    response = await client.delete(f"/api/media/samples/{sample_id}", headers=account.headers)
    await settle(state)

    assert response.status_code == 200
    assert response.json()["data"] == {"id": sample_id, "deleted": True}
    assert await sample_rows(db, account.id) == []
    assert await stored(account.id) == []


async def test_purging_an_account_removes_its_samples_files(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, stored: Any, tmp_path: Path
) -> None:
    account = await register(client)
    await upload(client, account, hit(tmp_path))
    await settle(state)
    await db.execute(
        update(User).where(User.id == account.id).values(deletion_scheduled_at=utcnow())
    )
    await db.commit()

    assert await purge_deleted_accounts(state) == 1
    await settle(state)

    assert await stored(account.id) == []


async def test_samples_need_a_token(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/media/samples"), 401, "AUTH_REQUIRED")


async def test_two_retries_at_once_queue_one_conversion(
    client: httpx.AsyncClient, state: AppState, tmp_path: Path
) -> None:
    account = await register(client)
    silence = make(tmp_path / "quiet.wav", source="anullsrc=r=44100:cl=mono", seconds=0.3)
    sample_id = (await upload(client, account, silence.read_bytes())).json()["data"]["id"]
    await settle(state)
    path = f"/api/media/samples/{sample_id}/retry"

    responses = await asyncio.gather(
        client.post(path, headers=account.headers), client.post(path, headers=account.headers)
    )

    assert sorted(response.status_code for response in responses) == [202, 409]


async def test_a_conversion_run_that_is_no_longer_the_latest_records_nothing(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession, tmp_path: Path
) -> None:
    account = await register(client)
    sample_id = (await upload(client, account, hit(tmp_path))).json()["data"]["id"]
    await settle(state)
    await db.execute(update(Sample).where(Sample.id == sample_id).values(status="pending"))
    await db.commit()
    earlier = await samples._claim(state, sample_id)
    latest = await samples._claim(state, sample_id)
    assert earlier is not None and latest is not None

    await samples._finish(state, earlier, error="the conversion took too long", form=None)

    [row] = await sample_rows(db, account.id)
    assert (row.status, row.error, row.conversion_attempts) == ("processing", None, 3)
