"""Shared helpers of the pattern tests: a valid configuration and a factory that creates
patterns through the API, the way a client would."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.patterns.models import Pattern
from tests.factories import Account

PATTERN_OVERRIDES: dict[str, Any] = {
    "INSTALL_DEFAULT_MACHINES": True,
    "RATE_LIMIT_PATTERN_CREATE": 1000,
}

_titles = itertools.count(1)


def salsa_configuration() -> dict[str, Any]:
    """A configuration valid against the default salsa machine."""
    return {
        "instruments": [
            {"id": "clave", "enabled": True, "activeProgram": 0, "volume": 0.9, "pitchOffset": 0},
            {"id": "cowbell", "enabled": True, "activeProgram": 0, "volume": 0.8, "pitchOffset": 0},
            {"id": "congas", "enabled": False, "activeProgram": 0, "volume": 0.5, "pitchOffset": 2},
        ]
    }


def pattern_body(**overrides: Any) -> dict[str, Any]:
    """A valid POST /patterns body; keyword arguments replace its fields (camelCase)."""
    body: dict[str, Any] = {
        "title": f"Groove {next(_titles)}",
        "description": "A tumbao to practise with",
        "flavor": "Salsa",
        "bpm": 180,
        "keyNote": 5,
        "isPublic": True,
        "configuration": salsa_configuration(),
    }
    body.update(overrides)
    return body


async def create_pattern(
    client: httpx.AsyncClient, account: Account, **overrides: Any
) -> dict[str, Any]:
    """Create a pattern as `account`; returns the 201 response's `data`."""
    response = await client.post(
        "/api/patterns", json=pattern_body(**overrides), headers=account.headers
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def merengue_configuration() -> dict[str, Any]:
    """A configuration valid against the default merengue machine."""
    return {
        "instruments": [
            {"id": "tambora", "enabled": True, "activeProgram": 0, "volume": 1.0, "pitchOffset": 0},
            {"id": "guira", "enabled": True, "activeProgram": 0, "volume": 0.7, "pitchOffset": 0},
        ]
    }


async def pattern_count(db: AsyncSession) -> int:
    """How many rows the patterns table holds (soft-deleted ones included), read fresh."""
    count = (await db.execute(select(func.count()).select_from(Pattern))).scalar_one()
    await db.commit()
    return int(count)


async def pattern_row(db: AsyncSession, pattern_id: str) -> dict[str, Any]:
    """Every column of a stored pattern as a dict, read fresh."""
    row = (
        (await db.execute(select(Pattern.__table__).where(Pattern.id == pattern_id)))
        .mappings()
        .one()
    )
    await db.commit()
    return dict(row)
