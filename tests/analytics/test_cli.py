"""`beatmachine analytics-rollup`: one rollup now, against the configured database, saying
which days it touched and how long it took."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.analytics.models import Rollup
from beatmachine.core.config import Settings, get_settings
from beatmachine.core.ids import utcnow
from tests.cli import point_cli_at, run_cli


@pytest.fixture
def cli_env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # No lag: the rollup takes in the usage the test has just recorded.
    point_cli_at(settings, tmp_path, monkeypatch, ANALYTICS_ROLLUP_LAG="0")
    yield
    get_settings.cache_clear()


async def _plays_today(db: AsyncSession) -> int | None:
    value = (
        await db.execute(
            select(Rollup.value).where(
                Rollup.metric == "plays",
                Rollup.period == "day",
                Rollup.period_start == utcnow().date(),
                Rollup.key == "",
            )
        )
    ).scalar_one_or_none()
    await db.commit()
    return value


@pytest.mark.usefixtures("cli_env", "usage")
async def test_the_command_rolls_up_what_was_recorded_and_says_which_days(
    db: AsyncSession,
) -> None:
    result = await run_cli("analytics-rollup")

    assert result.exit_code == 0, result.output
    today = utcnow().date().isoformat()
    assert "1 day(s)" in result.output
    assert today in result.output
    assert await _plays_today(db) == 6  # the known usage's plays


@pytest.mark.usefixtures("cli_env", "usage")
async def test_a_second_run_finds_nothing_new_and_counts_nothing_twice(
    db: AsyncSession,
) -> None:
    first = await run_cli("analytics-rollup")
    assert first.exit_code == 0, first.output

    second = await run_cli("analytics-rollup")

    assert second.exit_code == 0, second.output
    assert "nothing new" in second.output
    assert await _plays_today(db) == 6


@pytest.mark.usefixtures("cli_env", "usage")
async def test_json_output_gives_the_window_the_days_and_the_time() -> None:
    result = await run_cli("analytics-rollup", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["after"] is None
    assert report["days"] == [utcnow().date().isoformat()]
    assert report["seconds"] >= 0
    assert report["upto"] <= utcnow().isoformat()
