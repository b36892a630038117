"""Accounts the pattern tests share: an owner of patterns and other people."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import Account, register


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    """The account whose patterns a test is about."""
    return await register(client, display_name="Owner")


@pytest.fixture
async def other(client: httpx.AsyncClient) -> Account:
    """Another signed-in account, with patterns of its own."""
    return await register(client, display_name="Other")


@pytest.fixture
async def stranger(client: httpx.AsyncClient) -> Account:
    """A signed-in account that has nothing to do with the owner's patterns."""
    return await register(client, display_name="Stranger")


@pytest.fixture
async def fan(client: httpx.AsyncClient) -> Account:
    """A signed-in account that likes and plays the owner's patterns."""
    return await register(client, display_name="Fan")
