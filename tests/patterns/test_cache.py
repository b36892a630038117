"""Cached reads of a pattern: anonymous readers get an ETag and 304s; every change is
served at once, also by another app instance sharing the cache; signed-in readers get
their own view."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from beatmachine.app import create_app
from beatmachine.core.config import Settings
from beatmachine.core.state import AppState
from beatmachine.patterns import service as patterns_service
from tests.conftest import Backend
from tests.factories import Account, assert_error
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return PATTERN_OVERRIDES


@pytest.fixture
async def pattern(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_pattern(client, owner, title="Cached Groove", isPublic=True)


async def anonymous_get(client: httpx.AsyncClient, pattern_id: str) -> httpx.Response:
    response = await client.get(f"/api/patterns/{pattern_id}")
    assert response.status_code == 200, response.text
    return response


async def test_anonymous_get_has_an_etag(
    client: httpx.AsyncClient, pattern: dict[str, Any]
) -> None:
    response = await anonymous_get(client, pattern["id"])

    etag = response.headers["etag"]
    # Weak: the same view goes out plain, gzip or brotli.
    assert etag.startswith('W/"') and etag.endswith('"') and len(etag) > 4
    assert "must-revalidate" in response.headers["cache-control"]
    assert response.json()["data"]["id"] == pattern["id"]
    assert (await anonymous_get(client, pattern["id"])).headers["etag"] == etag


async def test_a_stale_copy_filed_after_a_change_is_never_served(
    client: httpx.AsyncClient, pattern: dict[str, Any], state: AppState
) -> None:
    # A reader that loaded the pattern just before an update files its copy late.
    stale = (await anonymous_get(client, pattern["id"])).content
    generation = await state.cache.get(f"patterns:gen:{pattern['id']}")
    await client.post(f"/api/patterns/{pattern['id']}/play")
    old_key = patterns_service.pattern_cache_key(
        pattern["id"], generation.decode() if generation else "0"
    )
    await state.cache.set(old_key, b'W/"stale"\n' + stale)

    response = await anonymous_get(client, pattern["id"])

    assert response.json()["data"]["stats"]["plays"] == 1


async def test_if_none_match_with_the_etag_is_not_modified(
    client: httpx.AsyncClient, pattern: dict[str, Any]
) -> None:
    etag = (await anonymous_get(client, pattern["id"])).headers["etag"]

    response = await client.get(f"/api/patterns/{pattern['id']}", headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


async def test_if_none_match_with_another_etag_sends_the_pattern(
    client: httpx.AsyncClient, pattern: dict[str, Any]
) -> None:
    response = await client.get(
        f"/api/patterns/{pattern['id']}", headers={"If-None-Match": '"something-else"'}
    )

    assert response.status_code == 200
    assert response.json()["data"]["title"] == "Cached Groove"


async def test_update_changes_the_etag_and_the_body(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    etag = (await anonymous_get(client, pattern["id"])).headers["etag"]
    updated = await client.put(
        f"/api/patterns/{pattern['id']}",
        json={"title": "Renamed", "bpm": 100},
        headers=owner.headers,
    )
    assert updated.status_code == 200, updated.text

    response = await client.get(f"/api/patterns/{pattern['id']}", headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response.headers["etag"] != etag
    data = response.json()["data"]
    assert (data["title"], data["bpm"]) == ("Renamed", 100)


async def test_like_changes_the_etag_and_the_count(
    client: httpx.AsyncClient, fan: Account, pattern: dict[str, Any]
) -> None:
    etag = (await anonymous_get(client, pattern["id"])).headers["etag"]
    await client.post(f"/api/patterns/{pattern['id']}/like", headers=fan.headers)

    response = await client.get(f"/api/patterns/{pattern['id']}", headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response.headers["etag"] != etag
    assert response.json()["data"]["stats"]["likes"] == 1
    assert response.json()["data"]["stats"]["isLikedByCurrentUser"] is False


async def test_unlike_changes_the_etag_and_the_count(
    client: httpx.AsyncClient, fan: Account, pattern: dict[str, Any]
) -> None:
    await client.post(f"/api/patterns/{pattern['id']}/like", headers=fan.headers)
    etag = (await anonymous_get(client, pattern["id"])).headers["etag"]
    await client.delete(f"/api/patterns/{pattern['id']}/like", headers=fan.headers)

    response = await client.get(f"/api/patterns/{pattern['id']}", headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response.headers["etag"] != etag
    assert response.json()["data"]["stats"]["likes"] == 0


async def test_play_changes_the_etag_and_the_count(
    client: httpx.AsyncClient, pattern: dict[str, Any]
) -> None:
    etag = (await anonymous_get(client, pattern["id"])).headers["etag"]
    await client.post(f"/api/patterns/{pattern['id']}/play")

    response = await client.get(f"/api/patterns/{pattern['id']}", headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response.headers["etag"] != etag
    assert response.json()["data"]["stats"]["plays"] == 1


async def test_fork_changes_the_originals_etag_and_fork_count(
    client: httpx.AsyncClient, fan: Account, pattern: dict[str, Any]
) -> None:
    etag = (await anonymous_get(client, pattern["id"])).headers["etag"]
    await client.post(f"/api/patterns/{pattern['id']}/fork", headers=fan.headers)

    response = await client.get(f"/api/patterns/{pattern['id']}", headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response.headers["etag"] != etag
    assert response.json()["data"]["stats"]["forks"] == 1


async def test_delete_is_not_found_even_with_the_old_etag(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    etag = (await anonymous_get(client, pattern["id"])).headers["etag"]
    await client.delete(f"/api/patterns/{pattern['id']}", headers=owner.headers)

    response = await client.get(f"/api/patterns/{pattern['id']}", headers={"If-None-Match": etag})

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert "etag" not in response.headers


async def test_making_a_pattern_private_hides_it_from_anonymous_readers(
    client: httpx.AsyncClient, owner: Account, pattern: dict[str, Any]
) -> None:
    await anonymous_get(client, pattern["id"])
    await client.put(
        f"/api/patterns/{pattern['id']}", json={"isPublic": False}, headers=owner.headers
    )

    response = await client.get(f"/api/patterns/{pattern['id']}")

    assert_error(response, 404, "PATTERN_NOT_FOUND")


async def test_private_pattern_is_not_found_anonymously(
    client: httpx.AsyncClient, owner: Account
) -> None:
    private = await create_pattern(client, owner, isPublic=False)

    response = await client.get(f"/api/patterns/{private['id']}")

    assert_error(response, 404, "PATTERN_NOT_FOUND")
    assert "etag" not in response.headers


async def test_signed_in_reader_gets_their_own_view_not_the_cached_one(
    client: httpx.AsyncClient, fan: Account, pattern: dict[str, Any]
) -> None:
    await client.post(f"/api/patterns/{pattern['id']}/like", headers=fan.headers)
    anonymous = await anonymous_get(client, pattern["id"])  # cached for anonymous readers

    response = await client.get(f"/api/patterns/{pattern['id']}", headers=fan.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["stats"]["isLikedByCurrentUser"] is True
    assert response.json()["data"]["stats"]["likes"] == 1
    assert "private" in response.headers["cache-control"]
    assert anonymous.json()["data"]["stats"]["isLikedByCurrentUser"] is False
    again = await anonymous_get(client, pattern["id"])
    assert again.json()["data"]["stats"]["isLikedByCurrentUser"] is False


async def test_signed_in_reader_is_not_answered_304_from_the_anonymous_etag(
    client: httpx.AsyncClient, fan: Account, pattern: dict[str, Any]
) -> None:
    etag = (await anonymous_get(client, pattern["id"])).headers["etag"]
    await client.post(f"/api/patterns/{pattern['id']}/like", headers=fan.headers)
    await anonymous_get(client, pattern["id"])

    response = await client.get(
        f"/api/patterns/{pattern['id']}", headers={**fan.headers, "If-None-Match": etag}
    )

    assert response.status_code == 200
    assert response.json()["data"]["stats"]["isLikedByCurrentUser"] is True


async def test_an_update_on_one_instance_is_served_by_another_at_once(
    backend: Backend,
    settings: Settings,
    client: httpx.AsyncClient,
    owner: Account,
    pattern: dict[str, Any],
) -> None:
    if backend.name != "postgres":
        pytest.skip("needs a shared Redis: the embedded cache is per process")
    other = create_app(settings)
    async with LifespanManager(other):
        transport = httpx.ASGITransport(app=other, client=("198.51.100.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as b:
            first = await anonymous_get(b, pattern["id"])  # instance B caches
            cached = await b.get(
                f"/api/patterns/{pattern['id']}", headers={"If-None-Match": first.headers["etag"]}
            )
            assert cached.status_code == 304

            updated = await client.put(  # instance A updates
                f"/api/patterns/{pattern['id']}", json={"title": "From A"}, headers=owner.headers
            )
            assert updated.status_code == 200, updated.text
            response = await b.get(
                f"/api/patterns/{pattern['id']}", headers={"If-None-Match": first.headers["etag"]}
            )

    assert response.status_code == 200
    assert response.headers["etag"] != first.headers["etag"]
    assert response.json()["data"]["title"] == "From A"


async def test_a_play_on_one_instance_is_served_by_another_at_once(
    backend: Backend, settings: Settings, client: httpx.AsyncClient, pattern: dict[str, Any]
) -> None:
    if backend.name != "postgres":
        pytest.skip("needs a shared Redis: the embedded cache is per process")
    other = create_app(settings)
    async with LifespanManager(other):
        transport = httpx.ASGITransport(app=other, client=("198.51.100.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as b:
            before = await anonymous_get(b, pattern["id"])
            await client.post(f"/api/patterns/{pattern['id']}/play")
            after = await anonymous_get(b, pattern["id"])

    assert before.json()["data"]["stats"]["plays"] == 0
    assert after.json()["data"]["stats"]["plays"] == 1
    assert after.headers["etag"] != before.headers["etag"]
