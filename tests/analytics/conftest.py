"""Settings and fixtures the analytics tests share: the default machines, an
administrator, no cache (unless a test asks for one), a rollup that stops at the moment
it runs, and a known set of usage."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from beatmachine.core.state import AppState
from tests.analytics.helpers import Usage, known_usage
from tests.factories import ADMIN_OVERRIDES, Account
from tests.jobs import settle
from tests.patterns.helpers import PATTERN_OVERRIDES

ANALYTICS_OVERRIDES: dict[str, Any] = {"ANALYTICS_CACHE_TTL": 0, "ANALYTICS_ROLLUP_LAG": 0}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, **ADMIN_OVERRIDES, **ANALYTICS_OVERRIDES}


@pytest.fixture
async def usage(
    client: httpx.AsyncClient,
    state: AppState,
    admin: Account,
    owner: Account,
    other: Account,
    stranger: Account,
) -> Usage:
    """The usage of `known_usage`, recorded (the listeners have run), not rolled up."""
    made = await known_usage(client, owner, other, stranger)
    await settle(state)
    return made
