"""Multipart uploads read as they arrive: the file part's bytes reach the handler, a file
over the limit is refused before the rest is read, bad bodies get their 4xx."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from beatmachine.core.errors import install_error_handlers
from beatmachine.core.middleware import BodyGuardMiddleware, UnexpectedErrorMiddleware
from beatmachine.core.uploads import MULTIPART_OVERHEAD, MULTIPART_TYPE, received_bytes, spooled

LIMIT = 64 * 1024
BOUNDARY = "upload-boundary-7f3a"
JSON_LIMIT = 1024
BODY_LIMIT = LIMIT + MULTIPART_OVERHEAD


def multipart(*parts: tuple[str, str | None, str, bytes]) -> bytes:
    """A multipart body of (name, filename, content type, bytes) parts."""
    body = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += (
            (
                f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode()


HEADERS = {"Content-Type": f"{MULTIPART_TYPE}; boundary={BOUNDARY}"}


@pytest.fixture
def spooled_paths() -> list[Path]:
    return []


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


@pytest.fixture
def app(spooled_paths: list[Path], spool_dir: Path) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/memory")
    async def to_memory(request: Request) -> dict[str, Any]:
        received, data = await received_bytes(request, field="file", max_bytes=LIMIT)
        return {
            "filename": received.filename,
            "contentType": received.content_type,
            "size": received.size,
            "head": data[:16].decode("latin-1"),
            "fields": received.fields,
        }

    @app.post("/disk")
    async def to_disk(request: Request) -> dict[str, Any]:
        async with spooled(request, field="file", max_bytes=LIMIT, directory=spool_dir) as upload:
            spooled_paths.append(upload.path)
            return {"size": upload.size, "onDisk": upload.path.read_bytes() == b"x" * upload.size}

    app.add_middleware(
        BodyGuardMiddleware,
        max_bytes=JSON_LIMIT,
        extra_types={"/memory": (MULTIPART_TYPE,), "/disk": (MULTIPART_TYPE,)},
        streamed={"/memory": LIMIT, "/disk": LIMIT},
    )
    app.add_middleware(UnexpectedErrorMiddleware)
    return app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def field_error(response: httpx.Response) -> tuple[str, str]:
    [entry] = response.json()["error"]["details"]["fields"]
    return entry["field"], entry["type"]


async def test_the_file_part_reaches_the_handler_with_its_declared_name_and_type(
    http: httpx.AsyncClient,
) -> None:
    body = multipart(
        ("note", None, "text/plain", b"ignored"),
        ("file", "C:\\photos\\me.png", "Image/PNG", b"\x89PNG" + b"y" * 1000),
    )

    response = await http.post("/memory", content=body, headers=HEADERS)

    assert response.status_code == 200
    assert response.json() == {
        "filename": "me.png",
        "contentType": "image/png",
        "size": 1004,
        "head": "\x89PNG" + "y" * 12,
        "fields": {"note": "ignored"},
    }


async def test_a_spooled_file_is_on_disk_in_the_block_and_removed_after_it(
    http: httpx.AsyncClient, spooled_paths: list[Path]
) -> None:
    body = multipart(("file", "a.wav", "audio/wav", b"x" * 5000))

    response = await http.post("/disk", content=body, headers=HEADERS)

    assert response.json() == {"size": 5000, "onDisk": True}
    [path] = spooled_paths
    assert not path.exists()


async def test_a_file_at_the_limit_is_taken(http: httpx.AsyncClient) -> None:
    body = multipart(("file", "a.wav", "audio/wav", b"x" * LIMIT))

    response = await http.post("/disk", content=body, headers=HEADERS)

    assert response.status_code == 200
    assert response.json()["size"] == LIMIT


async def test_a_file_over_the_limit_is_refused_before_the_body_is_all_read(
    http: httpx.AsyncClient, spool_dir: Path
) -> None:
    sent: list[int] = []
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()

    async def endless() -> AsyncIterator[bytes]:
        yield head
        for _ in range(10_000):  # 160 MB if it were all read
            sent.append(16 * 1024)
            yield b"x" * (16 * 1024)

    response = await http.post("/disk", content=endless(), headers=HEADERS)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert response.json()["error"]["details"] == {"field": "file", "maxBytes": LIMIT}
    assert sum(sent) <= LIMIT + 32 * 1024
    assert os.listdir(spool_dir) == []  # noqa: PTH208 (a quick look, after the request)


async def test_a_declared_length_over_the_paths_limit_is_refused_at_once(
    http: httpx.AsyncClient,
) -> None:
    body = multipart(("file", "a.wav", "audio/wav", b"x" * (BODY_LIMIT + 1)))

    response = await http.post("/memory", content=body, headers=HEADERS)

    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"maxBytes": LIMIT}


async def test_a_body_that_is_not_multipart_is_refused_as_unsupported(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/memory", json={"file": "x"})

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_a_multipart_body_without_a_boundary_is_refused_as_unsupported(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/memory", content=b"--x--\r\n", headers={"Content-Type": MULTIPART_TYPE}
    )

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (multipart(("other", "a.png", "image/png", b"x")), ("file", "missing")),
        (multipart(("file", "a.png", "image/png", b"")), ("file", "empty")),
        (
            multipart(("file", "a.png", "image/png", b"x"), ("file", "b.png", "image/png", b"y")),
            ("file", "multiple"),
        ),
        (f"--{BOUNDARY}\r\nnot a header line\r\n\r\n".encode(), ("file", "multipart")),
        (
            multipart(("file", "a.png", "image/png", b"xyz"))[:-30],  # cut before its end
            ("file", "incomplete"),
        ),
        (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n'
                f'Content-Disposition: form-data; name="other"\r\n\r\nxyz\r\n--{BOUNDARY}--\r\n'
            ).encode(),
            ("file", "multipart"),
        ),
    ],
    ids=["no_file_part", "empty_file", "two_files", "malformed", "cut_short", "repeated_header"],
)
async def test_a_bad_multipart_body_is_a_validation_error(
    http: httpx.AsyncClient, body: bytes, expected: tuple[str, str]
) -> None:
    response = await http.post("/memory", content=body, headers=HEADERS)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert field_error(response) == expected


@pytest.mark.parametrize(
    "fields",
    [
        [("name", None, "text/plain", b"x" * 1025)],
        [(f"f{number}", None, "text/plain", b"x") for number in range(9)],
        [("name", None, "text/plain", b"\xff\xfe")],
        [("name", None, "text/plain", b"a"), ("name", None, "text/plain", b"b")],
    ],
    ids=["field_over_1_kib", "nine_fields", "field_not_utf8", "field_twice"],
)
async def test_text_fields_beyond_their_limits_are_a_validation_error(
    http: httpx.AsyncClient, fields: list[tuple[str, str | None, str, bytes]]
) -> None:
    body = multipart(*fields, ("file", "a.png", "image/png", b"x"))

    response = await http.post("/memory", content=body, headers=HEADERS)

    assert response.status_code == 422
    assert field_error(response) == (fields[-1][0], "field")


async def test_other_paths_keep_the_json_limit(http: httpx.AsyncClient) -> None:
    response = await http.post("/elsewhere", content=b"x" * (JSON_LIMIT + 1), headers=HEADERS)

    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"maxBytes": JSON_LIMIT}


async def test_a_client_that_goes_away_mid_upload_gets_no_answer(
    app: FastAPI, spool_dir: Path
) -> None:
    body = multipart(("file", "a.wav", "audio/wav", b"x" * 5000))
    incoming = [
        {"type": "http.request", "body": body[:1000], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/disk",
        "raw_path": b"/disk",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", HEADERS["Content-Type"].encode())],
        "client": ("203.0.113.7", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)

    assert sent == []  # no 500: nobody is there to read an answer
    assert os.listdir(spool_dir) == []  # noqa: PTH208 (a quick look, after the request)
