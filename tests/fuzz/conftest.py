"""Fixtures of the fuzz run: the app with limits out of the way, seeded resources, the
schema the app serves, and a bridge that sends schemathesis' cases to the app on the
suite's event loop."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.specs.openapi.schemas import OpenApiSchema

from beatmachine.core.state import AppState
from tests.factories import ADMIN_OVERRIDES
from tests.fuzz.harness import Identity, Seeded, fuzz_config, mix_in_known_values, seed_resources
from tests.patterns.helpers import PATTERN_OVERRIDES

# High enough that no fuzzed request is ever refused for its rate.
UNLIMITED = 1_000_000


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        **PATTERN_OVERRIDES,
        **ADMIN_OVERRIDES,
        "RATE_LIMIT_ANONYMOUS": UNLIMITED,
        "RATE_LIMIT_AUTHENTICATED": UNLIMITED,
        "RATE_LIMIT_PATTERN_CREATE": UNLIMITED,
        "RATE_LIMIT_COMMENT_CREATE": UNLIMITED,
        "LOGIN_FAIL_LIMIT_ACCOUNT": UNLIMITED,
        "LOGIN_FAIL_LIMIT_IP": UNLIMITED,
        # The seeded failing job fails for good at once.
        "JOB_RETRIES": 0,
        # Webhook deliveries: one quick attempt each (the seeded endpoint is on loopback).
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
        "WEBHOOK_MAX_ATTEMPTS": 1,
        "WEBHOOK_CONNECT_TIMEOUT": 1,
        "WEBHOOK_READ_TIMEOUT": 1,
    }


@pytest.fixture
async def seeded(client: httpx.AsyncClient, state: AppState) -> Seeded:
    return await seed_resources(client, state)


@pytest.fixture(params=["anonymous", "user", "admin"])
def identity(request: pytest.FixtureRequest, seeded: Seeded) -> Identity:
    """Who sends the fuzzed requests."""
    return seeded.identities[request.param]


@pytest.fixture
async def fuzz_schema(app: FastAPI, client: httpx.AsyncClient, seeded: Seeded) -> OpenApiSchema:
    """The schema the app serves, with the seeded ids mixed into generated path and query
    parameters."""
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200, response.text
    schema = schemathesis.openapi.from_dict(response.json(), config=fuzz_config())
    mix_in_known_values(schema, seeded.known_values)
    return schema
