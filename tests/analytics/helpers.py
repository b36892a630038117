"""Known usage made through the API, and reading the reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics.models import Rollup, TrendingPattern
from tests.factories import Account
from tests.patterns.helpers import create_pattern, merengue_configuration, salsa_configuration


@dataclass(frozen=True)
class Usage:
    """Three patterns: two public Salsa ones and a private Merengue one."""

    tumbao: str  # Salsa, 180 bpm, key 5, clave + cowbell; 3 plays, 1 like
    son: str  # Salsa, 182 bpm, key 0, clave; 1 play, 2 likes
    private: str  # Merengue, 150 bpm, key 5, tambora + guira; private, 2 plays by its owner


def _clave_only() -> dict[str, Any]:
    configuration = salsa_configuration()
    for instrument in configuration["instruments"]:
        instrument["enabled"] = instrument["id"] == "clave"
    return configuration


async def play(client: httpx.AsyncClient, pattern_id: str, account: Account | None) -> None:
    headers = account.headers if account is not None else {}
    response = await client.post(f"/api/patterns/{pattern_id}/play", headers=headers)
    assert response.status_code == 200, response.text


async def like(client: httpx.AsyncClient, pattern_id: str, account: Account) -> None:
    response = await client.post(f"/api/patterns/{pattern_id}/like", headers=account.headers)
    assert response.status_code == 200, response.text


async def known_usage(
    client: httpx.AsyncClient, owner: Account, other: Account, stranger: Account
) -> Usage:
    """Make the usage that `Usage` describes, as clients would."""
    tumbao = await create_pattern(client, owner, title="Tumbao", bpm=180, keyNote=5)
    son = await create_pattern(
        client, owner, title="Son", bpm=182, keyNote=0, configuration=_clave_only()
    )
    private = await create_pattern(
        client,
        owner,
        title="Ensayo",
        flavor="Merengue",
        bpm=150,
        keyNote=5,
        isPublic=False,
        configuration=merengue_configuration(),
    )
    for account in (other, stranger, None):
        await play(client, tumbao["id"], account)
    await play(client, son["id"], other)
    await play(client, private["id"], owner)
    await play(client, private["id"], owner)
    await like(client, tumbao["id"], other)
    await like(client, son["id"], other)
    await like(client, son["id"], stranger)
    return Usage(tumbao=tumbao["id"], son=son["id"], private=private["id"])


async def report(
    client: httpx.AsyncClient, path: str, account: Account | None = None
) -> dict[str, Any]:
    """The `data` of a 200 answer of `/api/analytics/<path>`."""
    headers = account.headers if account is not None else {}
    response = await client.get(f"/api/analytics/{path}", headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def rollup_tables(db: AsyncSession) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every row of the rollups and of the trending ranges, in order, read fresh."""
    rollups = await db.execute(
        select(
            Rollup.metric, Rollup.period, Rollup.period_start, Rollup.key, Rollup.value
        ).order_by(Rollup.metric, Rollup.period, Rollup.period_start, Rollup.key)
    )
    trending = await db.execute(
        select(
            TrendingPattern.time_range,
            TrendingPattern.pattern_id,
            TrendingPattern.plays,
            TrendingPattern.likes,
            TrendingPattern.score,
        ).order_by(TrendingPattern.time_range, TrendingPattern.pattern_id)
    )
    result = ([tuple(row) for row in rollups.all()], [tuple(row) for row in trending.all()])
    await db.commit()
    return result
