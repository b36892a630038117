"""Accounts and patterns the social tests share."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import ADMIN_OVERRIDES, Account, register
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, **ADMIN_OVERRIDES}


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    """The owner of the patterns a test comments on."""
    return await register(client, display_name="Owner")


@pytest.fixture
async def fan(client: httpx.AsyncClient) -> Account:
    """Someone who comments on the owner's patterns."""
    return await register(client, display_name="Fan")


@pytest.fixture
async def stranger(client: httpx.AsyncClient) -> Account:
    """A signed-in account that has nothing to do with the comments at hand."""
    return await register(client, display_name="Stranger")


@pytest.fixture
async def public(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, isPublic=True)


@pytest.fixture
async def private(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, isPublic=False)
