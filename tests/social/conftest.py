"""Settings and patterns the social tests share (the accounts are the root
`conftest.py`'s: owner, fan, stranger, admin)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import ADMIN_OVERRIDES, Account
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, **ADMIN_OVERRIDES}


@pytest.fixture
async def public(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, isPublic=True)


@pytest.fixture
async def private(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, isPublic=False)
