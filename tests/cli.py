"""Running `beatmachine` commands in tests, against the test database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from beatmachine.cli import app as cli_app
from beatmachine.core.config import Settings, get_settings


def point_cli_at(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: str
) -> None:
    """Point the CLI's settings (read from the environment) at the test database, with
    `extra` settings; the caller clears `get_settings`'s cache again afterwards."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "cli-var"))
    monkeypatch.setenv("JWT_SECRET", "cli-test-secret-" + "y" * 40)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("ADMIN_EMAILS", raising=False)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


async def run_cli(*args: str) -> Result:
    """`beatmachine ARGS...`; the command runs its own event loop, so it gets a thread of
    its own."""
    return await asyncio.to_thread(CliRunner().invoke, cli_app, list(args))
