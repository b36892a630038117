"""Files sent as `multipart/form-data`, read as they arrive.

The body is parsed chunk by chunk (python-multipart's streaming parser) and the bytes of
the one file part asked for are handed to a sink as they come: to memory for a small
image, to a temporary file for audio. The limit is checked before each chunk goes to the
sink, so a file over it is refused (413) while it is still arriving, and nothing but
that part's bytes is kept.

    async with spooled(request, field="file", max_bytes=limit) as upload:
        ...  # upload.path holds the bytes, removed on leaving the block
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from beatmachine.core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

if TYPE_CHECKING:  # a typing-only name of python-multipart
    from python_multipart.multipart import MultipartCallbacks

MULTIPART_TYPE = "multipart/form-data"
# What a body may hold besides the file (boundaries, part headers, small fields).
MULTIPART_OVERHEAD = 64 * 1024
# Text parts besides the file (a name, say): at most this many, each this long.
MAX_FIELDS = 8
MAX_FIELD_BYTES = 1024
Sink = Callable[[bytes], Awaitable[None]]


def multipart_request_body(file_field: str, **text_fields: int) -> dict[str, Any]:
    """The OpenAPI `requestBody` of an upload route: the file part `file_field` and
    optional text parts (name -> most characters), for `openapi_extra`."""
    properties: dict[str, Any] = {file_field: {"type": "string", "format": "binary"}}
    properties |= {
        name: {"type": "string", "maxLength": size} for name, size in text_fields.items()
    }
    schema = {"type": "object", "required": [file_field], "properties": properties}
    return {"requestBody": {"required": True, "content": {MULTIPART_TYPE: {"schema": schema}}}}


@dataclass(frozen=True)
class ReceivedFile:
    """The file part as the client described it (neither is trusted for what the bytes
    are), how many bytes it held, and the text parts sent beside it."""

    filename: str
    content_type: str
    size: int
    fields: dict[str, str]


@dataclass(frozen=True)
class SpooledFile(ReceivedFile):
    """A received file kept in a temporary file at `path`."""

    path: Path


def _field_error(field: str, message: str, kind: str) -> ValidationFailed:
    return ValidationFailed(
        "The upload is not valid.",
        details={"fields": [{"field": field, "message": message, "type": kind}]},
    )


class _FilePart:
    """Callbacks of the streaming parser: headers of each part, and the data of the part
    named `field`, gathered per written chunk."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.pending: list[bytes] = []
        self.described: ReceivedFile | None = None
        self.parts_named_field = 0
        self.finished = False
        self.repeated_header = False
        self.fields: dict[str, str] = {}
        # The first text part that is not taken: (its name, why).
        self.bad_field: tuple[str, str] | None = None
        self._text: bytearray | None = None
        self._text_name = ""
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""
        self._in_field = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._in_field = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        name = self._header_name.lower()
        if name in self._headers:
            self.repeated_header = True
        self._headers[name] = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name != self.field:
            if b"filename" not in options and name:
                self._text, self._text_name = bytearray(), name
            return
        self.parts_named_field += 1
        if self.parts_named_field > 1:
            return
        self._in_field = True
        declared, _ = parse_options_header(self._headers.get(b"content-type", b""))
        filename = options.get(b"filename", b"").decode("utf-8", "replace")
        self.described = ReceivedFile(
            filename=filename.replace("\\", "/").rsplit("/", 1)[-1],
            content_type=declared.decode("latin-1").lower(),
            size=0,
            fields={},
        )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_field:
            self.pending.append(data[start:end])
        elif self._text is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_FIELD_BYTES:
                self._refuse_text(f"is longer than {MAX_FIELD_BYTES} bytes")
                self._text = None

    def _refuse_text(self, reason: str) -> None:
        if self.bad_field is None:
            self.bad_field = (self._text_name, reason)

    def _part_end(self) -> None:
        if self._in_field:
            self.finished = True
        elif self._text is not None:
            if len(self.fields) >= MAX_FIELDS:
                self._refuse_text(f"is one field too many (at most {MAX_FIELDS})")
            elif self._text_name in self.fields:
                self._refuse_text("is sent more than once")
            else:
                try:
                    self.fields[self._text_name] = self._text.decode()
                except UnicodeDecodeError:
                    self._refuse_text("is not UTF-8 text")
        self._in_field = False
        self._text = None


def _boundary(request: Request) -> bytes:
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary", b"")
    if media_type.decode("latin-1").lower() != MULTIPART_TYPE or not boundary:
        raise UnsupportedMediaType(
            "Send the file as multipart/form-data.",
            details={"contentType": request.headers.get("content-type", "")},
        )
    return boundary


async def receive_file(request: Request, *, field: str, max_bytes: int, sink: Sink) -> ReceivedFile:
    """Read the request's multipart body, handing the bytes of the file part `field` to
    `sink` as they arrive; the rest of the body is read and dropped.

    Raises `UnsupportedMediaType` for a body that is not multipart, `PayloadTooLarge` as
    soon as the file passes `max_bytes`, and `ValidationFailed` for a malformed body, a
    missing or repeated part, or an empty file.
    """
    part = _FilePart(field)
    parser = MultipartParser(_boundary(request), part.callbacks())
    size = 0
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise _field_error(field, "the multipart body is malformed", "multipart") from exc
            for data in part.pending:
                size += len(data)
                if size > max_bytes:
                    raise PayloadTooLarge(
                        f"The file is larger than {max_bytes} bytes.",
                        details={"field": field, "maxBytes": max_bytes},
                    )
                await sink(data)
            part.pending.clear()
        parser.finalize()
    except ClientDisconnect:
        raise
    except MultipartParseError as exc:
        raise _field_error(field, "the multipart body is malformed", "multipart") from exc
    if part.repeated_header:
        raise _field_error(field, "a part repeats one of its headers", "multipart")
    if part.bad_field is not None:
        raise _field_error(part.bad_field[0], part.bad_field[1], "field")
    if part.parts_named_field > 1:
        raise _field_error(field, "send one file only", "multiple")
    if part.described is None:
        raise _field_error(field, "a file part of this name is required", "missing")
    if not part.finished:
        raise _field_error(field, "the body ends before the file does", "incomplete")
    if size == 0:
        raise _field_error(field, "the file is empty", "empty")
    return ReceivedFile(part.described.filename, part.described.content_type, size, part.fields)


async def received_bytes(
    request: Request, *, field: str, max_bytes: int
) -> tuple[ReceivedFile, bytes]:
    """The file part `field` in memory (for files of a few MB at most; see `receive_file`)."""
    buffer = bytearray()

    async def keep(data: bytes) -> None:
        buffer.extend(data)

    received = await receive_file(request, field=field, max_bytes=max_bytes, sink=keep)
    return received, bytes(buffer)


@contextlib.asynccontextmanager
async def spooled(
    request: Request, *, field: str, max_bytes: int, directory: Path | None = None
) -> AsyncIterator[SpooledFile]:
    """The file part `field` written to a temporary file (in `directory`, else the
    system's), removed when the block is left however it ends (see `receive_file`)."""
    descriptor, name = await anyio.to_thread.run_sync(
        lambda: tempfile.mkstemp(prefix="upload-", dir=directory)
    )
    path = Path(name)
    try:
        async with await anyio.open_file(descriptor, "wb") as out:

            async def write(data: bytes) -> None:
                await out.write(data)

            received = await receive_file(request, field=field, max_bytes=max_bytes, sink=write)
        yield SpooledFile(
            received.filename, received.content_type, received.size, received.fields, path
        )
    finally:
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))
