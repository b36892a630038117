"""Schemathesis against the app's own OpenAPI schema: every operation it documents, on
both back ends, as an anonymous caller, a user and an admin, with real ids mixed into
the generated ones. Each response must be no server error, have a documented status and
content type, match its documented schema, and every error must be the envelope."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from beatmachine.core.state import AppState
from tests.conftest import Backend
from tests.fuzz.checks import error_envelope, private_answers_not_stored
from tests.fuzz.harness import (
    EXAMPLES_PER_OPERATION,
    EXAMPLES_PER_OPERATION_POSTGRES,
    Bridge,
    Identity,
    Seeded,
    fuzz_operation,
    renew_resources,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_envelope,
    private_answers_not_stored,
]


# The operations are fuzzed in shards (every SHARDS-th one), so that pytest-xdist spreads
# the run over its workers instead of one worker doing an identity's whole run.
SHARDS = 3


@pytest.mark.parametrize("shard", range(SHARDS))
async def test_every_operation_answers_as_documented(
    shard: int,
    backend: Backend,
    fuzz_schema: OpenApiSchema,
    identity: Identity,
    seeded: Seeded,
    client: httpx.AsyncClient,
    state: AppState,
    subtests: pytest.Subtests,
) -> None:
    bridge = Bridge(asyncio.get_running_loop(), client, identity)
    operations = 0
    examples = (
        EXAMPLES_PER_OPERATION_POSTGRES if backend.name == "postgres" else EXAMPLES_PER_OPERATION
    )
    for index, result in enumerate(fuzz_schema.get_all_operations()):
        assert isinstance(result, Ok), result
        if index % SHARDS != shard:
            continue
        operation = result.ok()
        operations += 1
        await renew_resources(client, state, seeded)
        with subtests.test(msg=operation.label):
            # Hypothesis runs in a thread of its own; the app keeps serving on this loop.
            await asyncio.to_thread(fuzz_operation, operation, bridge, CHECKS, examples)
    never_succeeded = sorted(
        f"{label} {dict(statuses)}"
        for label, statuses in bridge.statuses.items()
        if not any(200 <= status < 300 for status in statuses)
    )
    print(
        f"\nfuzzed {operations} operations (shard {shard}) as {identity.name}:"
        f" {bridge.sent} requests;"
        f" no 2xx from {len(never_succeeded)}: {'; '.join(never_succeeded)}"
    )
