"""Helpers of the users tests: real image bytes and a look at the stored rows."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.users.models import User, UserPreferences

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bytes(extra_chunk_size: int = 0) -> bytes:
    """A valid 1x1 red RGB PNG; `extra_chunk_size` adds a private ancillary chunk of that size
    (still a well-formed PNG, just a heavy one)."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    chunks = [_png_chunk(b"IHDR", header)]
    if extra_chunk_size:
        filler = (bytes(range(256)) * (extra_chunk_size // 256 + 1))[:extra_chunk_size]
        chunks.append(_png_chunk(b"prVt", filler))
    chunks += [_png_chunk(b"IDAT", pixels), _png_chunk(b"IEND", b"")]
    return PNG_SIGNATURE + b"".join(chunks)


def data_url(media_type: str, raw: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"


async def user_row(db: AsyncSession, user_id: str) -> dict[str, Any]:
    """The stored account as committed now (the session's earlier reads are dropped)."""
    await db.rollback()
    db.expire_all()
    result = await db.execute(
        select(
            User.display_name,
            User.bio,
            User.avatar,
            User.is_admin,
            User.email,
            User.updated_at,
        ).where(User.id == user_id)
    )
    return dict(result.mappings().one())


async def preferences_row(db: AsyncSession, user_id: str) -> dict[str, Any]:
    await db.rollback()
    db.expire_all()
    columns = [column for column in UserPreferences.__table__.columns if column.name != "user_id"]
    result = await db.execute(select(*columns).where(UserPreferences.user_id == user_id))
    return dict(result.mappings().one())


async def user_count(db: AsyncSession, email: str) -> int:
    await db.rollback()
    result = await db.execute(select(User.id).where(User.email == email))
    return len(result.scalars().all())
