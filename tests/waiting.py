"""Waiting for what happens between processes, e.g. a message over Redis pub/sub."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

DEADLINE_SECONDS = 5.0


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = DEADLINE_SECONDS
) -> None:
    """Wait until `check` holds; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"not within {within} s")
        await asyncio.sleep(0.01)
