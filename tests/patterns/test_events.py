"""The domain events the patterns and accounts record, as a listening domain receives them
(in no guaranteed order: delivery is by the job queue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.models import AuthSession
from beatmachine.auth.service import _sessions as sessions
from beatmachine.core.events import Delivered, DomainEvent
from beatmachine.core.state import AppState
from beatmachine.patterns.events import (
    PatternCreated,
    PatternDeleted,
    PatternForked,
    PatternLiked,
    PatternPlayed,
    PatternRestored,
    PatternUnliked,
    PatternUpdated,
)
from beatmachine.users.events import UserActive, UserRegistered
from tests.factories import Account, login, register
from tests.jobs import settle
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern

ALL_EVENTS: tuple[type[DomainEvent], ...] = (
    PatternCreated,
    PatternUpdated,
    PatternDeleted,
    PatternRestored,
    PatternPlayed,
    PatternLiked,
    PatternUnliked,
    PatternForked,
    UserRegistered,
    UserActive,
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return PATTERN_OVERRIDES


class Heard:
    """Every event of the domains, in the order delivered (one list per event name)."""

    def __init__(self, state: AppState) -> None:
        self._state = state
        self.by_name: dict[str, list[Any]] = {}
        for event_type in ALL_EVENTS:
            state.events.listen(event_type, f"test.heard.{event_type.name}", self._keep)

    async def _keep(self, _session: AsyncSession, delivered: Delivered[Any]) -> None:
        self.by_name.setdefault(delivered.event.name, []).append(delivered.event)

    async def of(self, event_type: type[DomainEvent]) -> list[Any]:
        await settle(self._state)
        return list(self.by_name.get(event_type.name, []))


@pytest.fixture
def heard(state: AppState) -> Heard:
    return Heard(state)


async def test_creating_a_pattern_records_pattern_created(
    client: httpx.AsyncClient, owner: Account, heard: Heard
) -> None:
    pattern = await create_pattern(client, owner, title="Tumbao", isPublic=True)

    [event] = await heard.of(PatternCreated)
    assert event == PatternCreated(
        pattern_id=pattern["id"],
        owner_id=owner.id,
        title="Tumbao",
        flavor="Salsa",
        bpm=180,
        key_note=5,
        is_public=True,
        instruments=["clave", "cowbell"],
        original_id=None,
    )


async def test_editing_a_pattern_records_what_changed(
    client: httpx.AsyncClient, owner: Account, heard: Heard
) -> None:
    pattern = await create_pattern(client, owner)

    response = await client.put(
        f"/api/patterns/{pattern['id']}",
        json={"bpm": 200, "isPublic": False},
        headers=owner.headers,
    )

    assert response.status_code == 200
    [event] = await heard.of(PatternUpdated)
    assert event.pattern_id == pattern["id"]
    assert event.changed == ["bpm", "isPublic"]
    assert (event.bpm, event.is_public, event.version) == (200, False, 2)


async def test_restoring_a_version_records_pattern_updated(
    client: httpx.AsyncClient, owner: Account, heard: Heard
) -> None:
    pattern = await create_pattern(client, owner, bpm=180)
    await client.put(f"/api/patterns/{pattern['id']}", json={"bpm": 90}, headers=owner.headers)

    response = await client.post(
        f"/api/patterns/{pattern['id']}/versions/1/restore", headers=owner.headers
    )

    assert response.status_code == 200
    _edit, restore = sorted(await heard.of(PatternUpdated), key=lambda event: event.version)
    assert restore.changed == ["bpm"]
    assert (restore.bpm, restore.version) == (180, 3)


async def test_deleting_and_restoring_record_their_events(
    client: httpx.AsyncClient, owner: Account, heard: Heard
) -> None:
    pattern = await create_pattern(client, owner, isPublic=True)

    await client.delete(f"/api/patterns/{pattern['id']}", headers=owner.headers)
    await client.post(f"/api/patterns/{pattern['id']}/restore", headers=owner.headers)

    assert await heard.of(PatternDeleted) == [
        PatternDeleted(pattern_id=pattern["id"], owner_id=owner.id)
    ]
    assert await heard.of(PatternRestored) == [
        PatternRestored(pattern_id=pattern["id"], owner_id=owner.id, is_public=True)
    ]


async def test_a_play_records_who_played_it(
    client: httpx.AsyncClient, owner: Account, fan: Account, heard: Heard
) -> None:
    pattern = await create_pattern(client, owner, isPublic=True)

    await client.post(f"/api/patterns/{pattern['id']}/play", headers=fan.headers)
    await client.post(f"/api/patterns/{pattern['id']}/play")

    played = await heard.of(PatternPlayed)
    assert sorted(played, key=lambda event: event.player_id or "") == [
        PatternPlayed(pattern_id=pattern["id"], owner_id=owner.id, player_id=None),
        PatternPlayed(pattern_id=pattern["id"], owner_id=owner.id, player_id=fan.id),
    ]


async def test_liking_twice_records_one_like_and_unliking_twice_one_unlike(
    client: httpx.AsyncClient, owner: Account, fan: Account, heard: Heard
) -> None:
    pattern = await create_pattern(client, owner, isPublic=True)
    like = f"/api/patterns/{pattern['id']}/like"

    for _ in range(2):
        await client.post(like, headers=fan.headers)
    for _ in range(2):
        await client.delete(like, headers=fan.headers)

    expected = {"pattern_id": pattern["id"], "owner_id": owner.id, "user_id": fan.id}
    assert await heard.of(PatternLiked) == [PatternLiked(**expected)]
    assert await heard.of(PatternUnliked) == [PatternUnliked(**expected)]


async def test_a_fork_records_the_fork_and_the_new_pattern(
    client: httpx.AsyncClient, owner: Account, fan: Account, heard: Heard
) -> None:
    original = await create_pattern(client, owner, isPublic=True)

    response = await client.post(f"/api/patterns/{original['id']}/fork", headers=fan.headers)

    fork_id = response.json()["data"]["id"]
    assert await heard.of(PatternForked) == [
        PatternForked(pattern_id=original["id"], owner_id=owner.id, fork_id=fork_id, user_id=fan.id)
    ]
    created = sorted(await heard.of(PatternCreated), key=lambda event: event.original_id or "")
    assert [(e.pattern_id, e.owner_id, e.original_id, e.is_public) for e in created] == [
        (original["id"], owner.id, None, True),
        (fork_id, fan.id, original["id"], False),
    ]


async def test_a_refused_change_records_nothing(
    client: httpx.AsyncClient, owner: Account, fan: Account, heard: Heard
) -> None:
    pattern = await create_pattern(client, owner, isPublic=True)

    refused = await client.put(
        f"/api/patterns/{pattern['id']}", json={"bpm": 200}, headers=fan.headers
    )

    assert refused.status_code == 403
    assert await heard.of(PatternUpdated) == []


async def test_registering_records_the_new_account_and_its_activity(
    client: httpx.AsyncClient, heard: Heard
) -> None:
    account = await register(client)

    assert await heard.of(UserRegistered) == [UserRegistered(user_id=account.id, method="password")]
    today = datetime.now(UTC).date()
    assert await heard.of(UserActive) == [UserActive(user_id=account.id, day=today)]


async def test_signing_in_records_activity(
    client: httpx.AsyncClient, owner: Account, heard: Heard
) -> None:
    await settle_and_forget(heard)

    response = await login(client, owner.email)

    assert response.status_code == 200
    assert [e.user_id for e in await heard.of(UserActive)] == [owner.id]


async def test_a_request_on_the_same_day_records_no_more_activity(
    client: httpx.AsyncClient, owner: Account, heard: Heard
) -> None:
    await settle_and_forget(heard)

    await client.get("/api/users/me", headers=owner.headers)
    await create_pattern(client, owner)

    assert await heard.of(UserActive) == []


async def test_the_first_request_of_a_new_day_records_activity_once(
    client: httpx.AsyncClient,
    owner: Account,
    heard: Heard,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await settle_and_forget(heard)
    # Just past midnight, the session last used two minutes ago, the day before.
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    await db.execute(
        update(AuthSession)
        .where(AuthSession.user_id == owner.id)
        .values(last_used_at=midnight - timedelta(minutes=1))
    )
    await db.commit()

    for minute in (1, 2, 3):
        monkeypatch.setattr(sessions, "utcnow", lambda m=minute: midnight + timedelta(minutes=m))
        assert (await client.get("/api/users/me", headers=owner.headers)).status_code == 200

    assert await heard.of(UserActive) == [UserActive(user_id=owner.id, day=midnight.date())]


async def settle_and_forget(heard: Heard) -> None:
    """Let the events so far arrive, then forget them."""
    for event_type in ALL_EVENTS:
        await heard.of(event_type)
    heard.by_name.clear()
