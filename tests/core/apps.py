"""Helpers of the cross-cutting tests: extra app instances with their own settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from beatmachine.app import create_app
from beatmachine.core.config import Settings

PEER = "203.0.113.7"
OTHER_PEER = "198.51.100.9"


def standalone_settings(var_dir: Path, **overrides: Any) -> Settings:
    """Settings of an embedded app that needs no migrated database (health, middleware)."""
    values: dict[str, Any] = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{var_dir / 'standalone.db'}",
        "REDIS_URL": "",
        "VAR_DIR": var_dir,
        "JWT_SECRET": "test-secret-" + "x" * 40,
        "LOG_JSON": False,
        "LOG_LEVEL": "CRITICAL",
        "RUN_SCHEDULER": False,
        "INSTALL_DEFAULT_MACHINES": False,
        "APP_URL": "http://localhost:3009",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def client_for(app: FastAPI, peer: str = PEER) -> httpx.AsyncClient:
    """An HTTP client talking to `app` from the peer address `peer`."""
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A started app instance of its own (lifespan run), stopped afterwards."""
    app = create_app(settings)
    async with LifespanManager(app):
        yield app


@asynccontextmanager
async def serve(settings: Settings, peer: str = PEER) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a started app instance of its own."""
    async with running_app(settings) as app, client_for(app, peer) as client:
        yield client
