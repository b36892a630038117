"""The fuzz run's machinery: its fixed configuration, the resources it seeds, the hooks
that mix their ids into generated parameters, and the bridge that sends a case to the app.

The app under test is the suite's `app` fixture: its engine, Redis clients and background
tasks live on the suite's event loop. Schemathesis' own ASGI transport runs apps on a loop
of its own (and its lazy pytest loader does not run on this pytest), so hypothesis runs
each operation in a thread while the loop keeps serving, and the bridge hands each case to
the loop as an httpx request.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter, defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import APIOperation, CheckFunction, GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import derive_operation_seed
from schemathesis.specs.openapi.schemas import OpenApiSchema

from beatmachine.core.state import AppState
from tests.factories import Account, login, register, register_admin
from tests.jobs import settle
from tests.patterns.helpers import create_pattern
from tests.smtp_server import free_port

BASE_URL = "http://testserver"
# The whole run is repeatable: one seed, no randomness beyond it, no example database.
SEED = 20240917


def _fuzz_depth() -> int:
    raw = os.environ.get("BM_FUZZ_DEPTH", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"BM_FUZZ_DEPTH must be a whole number of at least 1, not {raw!r}")
    return int(raw)


# Cases per operation and identity. The suite's run keeps CI in its time; a deeper run
# (before a release, or after a change to validation) multiplies both with
# BM_FUZZ_DEPTH, e.g. BM_FUZZ_DEPTH=5 pytest tests/fuzz.
FUZZ_DEPTH = _fuzz_depth()
EXAMPLES_PER_OPERATION = 20 * FUZZ_DEPTH
# On PostgreSQL the run looks for what the database does differently, not for new
# shapes of input (the SQLite run draws those): fewer cases keep the suite in its time.
EXAMPLES_PER_OPERATION_POSTGRES = 8 * FUZZ_DEPTH
# Seconds a single fuzzed request may take before the run gives up on it.
REQUEST_TIMEOUT = 60


def fuzz_config() -> SchemathesisConfig:
    """The schema's configuration: requests go to the in-process app's base URL."""
    return SchemathesisConfig.from_dict({"seed": SEED, "base-url": BASE_URL})


@dataclass
class Identity:
    """Who sends the fuzzed requests: nobody, or an account whose token is renewed when a
    fuzzed request (a logout, a revoked session) ends it."""

    name: str
    account: Account | None = None
    token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass(frozen=True)
class Seeded:
    identities: dict[str, Identity]
    # Real values by name, mixed into generated path and query parameters and into the
    # top-level fields of generated bodies.
    known_values: dict[str, list[Any]] = field(default_factory=dict)
    # The owner's patterns (public, private): fuzzed requests may delete them.
    pattern_ids: tuple[str, ...] = ()


# Where the seeded webhook endpoint sends: a loopback port nothing listens on (refused at
# once; the fuzz settings allow loopback), and events the renewal does not cause.
WEBHOOK_URL = f"http://127.0.0.1:{free_port()}/hook"
WEBHOOK_EVENTS = ["user.followed"]


# The failing job whose failures give the admin's job operations real ids.
FAILING_JOB = "fuzz.always_fails"


async def _always_fails(**_kwargs: Any) -> None:
    raise ConnectionError("the far side is down")


async def seed_resources(client: httpx.AsyncClient, state: AppState) -> Seeded:
    """A user with a public and a private pattern (two versions, a share link), an admin,
    a failed job and the default machines: real ids for the parameters that take them."""
    owner = await register(client, display_name="Fuzz Owner")
    admin = await register_admin(client)
    public = await create_pattern(client, owner, isPublic=True)
    private = await create_pattern(client, owner, isPublic=False)
    updated = await client.put(
        f"/api/patterns/{private['id']}", json={"bpm": 200}, headers=owner.headers
    )
    assert updated.status_code == 200, updated.text
    link = await client.post(f"/api/patterns/{private['id']}/share-links", headers=owner.headers)
    assert link.status_code == 201, link.text
    sessions = await client.get("/api/auth/sessions", headers=owner.headers)
    assert sessions.status_code == 200, sessions.text
    state.jobs.register(FAILING_JOB, _always_fails)
    seeded = Seeded(
        identities={
            "anonymous": Identity("anonymous"),
            "user": Identity("user", owner, owner.token),
            "admin": Identity("admin", admin, admin.token),
        },
        known_values={
            "pattern_id": [public["id"], private["id"]],
            "version": [1, 2],
            "from": [1, 2],
            "to": [1, 2],
            "link_id": [link.json()["data"]["id"]],
            "token": [link.json()["data"]["token"]],
            "machine_id": ["salsa", "merengue"],
            "id": ["salsa"],
            "instrument_id": ["clave", "cowbell"],
            "user_id": [owner.id, admin.id],
            "userId": [owner.id],
            "session_id": [s["id"] for s in sessions.json()["data"]["sessions"]],
            # Body fields: a real account, its refresh token, a machine's flavor.
            "email": [owner.email],
            "password": [owner.password],
            "refreshToken": [owner.refresh_token],
            "flavor": ["Salsa", "Merengue"],
            "defaultFlavor": ["Salsa"],
            "url": [WEBHOOK_URL],
            "events": [WEBHOOK_EVENTS],
        },
        pattern_ids=(public["id"], private["id"]),
    )
    await renew_resources(client, state, seeded)
    return seeded


async def renew_resources(client: httpx.AsyncClient, state: AppState, seeded: Seeded) -> None:
    """Before each operation, bring back what earlier fuzzed requests used up, so the ids
    handed to it name live resources: the patterns restored, a fresh share link, the
    owner's current sessions, a comment of theirs, a notification of theirs, a failed job
    not yet sent again, the webhook endpoint and a delivery of it."""
    owner = seeded.identities["user"]
    headers = await _signed_in(client, owner)
    for pattern_id in seeded.pattern_ids:
        await client.post(f"/api/patterns/{pattern_id}/restore", headers=headers)
    private_id = seeded.pattern_ids[-1]
    link = await client.post(f"/api/patterns/{private_id}/share-links", headers=headers)
    assert link.status_code == 201, link.text
    sessions = await client.get("/api/auth/sessions", headers=headers)
    assert sessions.status_code == 200, sessions.text
    posted = await client.post(
        f"/api/patterns/{seeded.pattern_ids[0]}/comments",
        json={"text": "Fuzz comment"},
        headers=headers,
    )
    assert posted.status_code == 201, posted.text
    admin = seeded.identities["admin"]
    # Following the owner anew leaves them an unread notification (a fuzzed request may
    # have made their patterns private, so a comment of someone else would not do).
    admin_headers = await _signed_in(client, admin)
    assert owner.account is not None
    owner_id = owner.account.id
    await client.delete(f"/api/users/{owner_id}/follow", headers=admin_headers)
    told = await client.post(f"/api/users/{owner_id}/follow", headers=admin_headers)
    assert told.status_code == 200, told.text
    await state.jobs.submit(FAILING_JOB)
    await settle(state)
    notifications = await client.get("/api/notifications?unread=true", headers=headers)
    assert notifications.status_code == 200, notifications.text
    failed = await client.get(
        "/api/admin/jobs?status=failed", headers=await _signed_in(client, admin)
    )
    assert failed.status_code == 200, failed.text
    known = seeded.known_values
    endpoint_id, delivery_id = await _webhook_resources(
        client, await _signed_in(client, admin), known.get("endpoint_id", ["whk_none"])[0]
    )
    await settle(state)
    known["endpoint_id"] = [endpoint_id]
    known["delivery_id"] = [delivery_id]
    known["link_id"] = [link.json()["data"]["id"]]
    known["token"] = [link.json()["data"]["token"]]
    known["session_id"] = [item["id"] for item in sessions.json()["data"]["sessions"]]
    known["job_id"] = [job["id"] for job in failed.json()["data"]["jobs"]]
    known["comment_id"] = [posted.json()["data"]["id"]]
    known["parentId"] = [posted.json()["data"]["id"]]
    known["notification_id"] = [n["id"] for n in notifications.json()["data"]["notifications"]]


async def _webhook_resources(
    client: httpx.AsyncClient, headers: dict[str, str], endpoint_id: str
) -> tuple[str, str]:
    """The seeded webhook endpoint as seeded (made again if a fuzzed request deleted it)
    and a fresh test delivery of it: their ids."""
    restored = await client.patch(
        f"/api/admin/webhooks/{endpoint_id}",
        json={"url": WEBHOOK_URL, "events": WEBHOOK_EVENTS, "enabled": True},
        headers=headers,
    )
    if restored.status_code == 404:
        restored = await client.post(
            "/api/admin/webhooks",
            json={"url": WEBHOOK_URL, "events": WEBHOOK_EVENTS},
            headers=headers,
        )
    assert restored.status_code in (200, 201), restored.text
    endpoint_id = restored.json()["data"]["id"]
    ping = await client.post(f"/api/admin/webhooks/{endpoint_id}/test", headers=headers)
    assert ping.status_code == 202, ping.text
    return endpoint_id, ping.json()["data"]["id"]


async def _signed_in(client: httpx.AsyncClient, identity: Identity) -> dict[str, str]:
    """`identity`'s headers, signing in again if a fuzzed request ended its session."""
    check = await client.get("/api/users/me", headers=identity.headers)
    if check.status_code == 401:
        account = identity.account
        assert account is not None
        response = await login(client, account.email, account.password)
        assert response.status_code == 200, response.text
        identity.token = response.json()["data"]["token"]
    return identity.headers


def _mixed(known: dict[str, list[Any]], generated: Any) -> st.SearchStrategy[Any]:
    """Each generated value, or in its place one of the real values of that name."""
    if not isinstance(generated, dict):  # negative cases may replace the whole container
        return st.just(generated)
    return st.fixed_dictionaries(
        {
            name: st.one_of(st.just(value), st.sampled_from(known[name]))
            if name in known
            else st.just(value)
            for name, value in generated.items()
        }
    )


def mix_in_known_values(schema: OpenApiSchema, known: dict[str, list[Any]]) -> None:
    """Register hooks on `schema` that mix the seeded values into path and query parameters
    and bodies, so operations that take an id (or an account) get past their 404s too."""

    @schema.hook
    def flatmap_path_parameters(
        _context: schemathesis.HookContext, path_parameters: Any
    ) -> st.SearchStrategy[Any]:
        return _mixed(known, path_parameters)

    @schema.hook
    def flatmap_query(_context: schemathesis.HookContext, query: Any) -> st.SearchStrategy[Any]:
        return _mixed(known, query)

    @schema.hook
    def flatmap_body(_context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
        return _mixed(known, body)


@dataclass
class Bridge:
    """Sends schemathesis cases as `identity` to the app with httpx, on the loop the app
    runs on, from the thread hypothesis runs in."""

    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    identity: Identity
    sent: int = 0
    # Statuses answered, by operation: what the run reached.
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def send(self, case: schemathesis.Case) -> httpx.Response:
        response = self._send(case)
        if self.identity.account is not None and _token_refused(response):
            # A fuzzed request (logout, a revoked session, account deletion) ended the
            # identity's session: sign in again and send the case once more.
            self._sign_in_again()
            response = self._send(case)
        self.statuses[case.operation.label][response.status_code] += 1
        return response

    def _send(self, case: schemathesis.Case) -> httpx.Response:
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=self.identity.headers)
        # requests encodes the query, the JSON or form body and the headers exactly as
        # schemathesis meant them; httpx then sends those bytes unchanged.
        prepared = requests.Request(
            method=kwargs["method"],
            url=kwargs["url"],
            headers=kwargs.get("headers"),
            params=kwargs.get("params"),
            json=kwargs.get("json"),
            data=kwargs.get("data"),
            files=kwargs.get("files"),
            cookies=kwargs.get("cookies"),
        ).prepare()
        assert prepared.method is not None and prepared.url is not None
        self.sent += 1
        return self._run(
            self.client.request(
                prepared.method, prepared.url, headers=dict(prepared.headers), content=prepared.body
            )
        )

    def _sign_in_again(self) -> None:
        account = self.identity.account
        assert account is not None
        response = self._run(login(self.client, account.email, account.password))
        assert response.status_code == 200, response.text
        self.identity.token = response.json()["data"]["token"]

    def _run(self, request: Coroutine[Any, Any, httpx.Response]) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(request, self.loop).result(REQUEST_TIMEOUT)


def _token_refused(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    try:
        return bool(response.json()["error"]["code"] == "AUTH_REQUIRED")
    except (ValueError, KeyError, TypeError):
        return False


def fuzz_operation(
    operation: APIOperation,
    bridge: Bridge,
    checks: list[CheckFunction],
    examples: int = EXAMPLES_PER_OPERATION,
) -> None:
    """Send `examples` cases of `operation` (valid and invalid data drawn alike) as the
    bridge's identity and check each response; the first failing case fails the
    operation."""
    strategy = st.one_of([operation.as_strategy(generation_mode=mode) for mode in GenerationMode])
    # Each identity draws cases of its own: three runs cover more than one run three times.
    seed = derive_operation_seed(SEED, f"{bridge.identity.name} {operation.label}")

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        # No shrinking: a failure reports the case as sent, and the run stays bounded.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    @hypothesis.given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        case.validate_response(bridge.send(case), checks=checks)

    run()
