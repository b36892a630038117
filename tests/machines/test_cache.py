"""HTTP caching of machines: ETag and Cache-Control, conditional requests, and that a
publish is served at once, and by another app instance sharing the cache as soon as the
new generation reaches it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from beatmachine.app import create_app
from beatmachine.core.config import Settings
from beatmachine.core.state import AppState
from beatmachine.machines import service
from tests.conftest import Backend
from tests.factories import ADMIN_OVERRIDES, Account
from tests.machines.helpers import import_real, instrument_body
from tests.waiting import eventually


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return ADMIN_OVERRIDES


@pytest.fixture
async def salsa(client: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    return await import_real(client, admin, "salsa")


async def _serves_version(client: httpx.AsyncClient, version: int) -> bool:
    return bool((await client.get("/api/machines/salsa")).json()["data"]["version"] == version)


async def change_clave(client: httpx.AsyncClient, admin: Account, title: str) -> None:
    response = await client.put(
        "/api/machines/salsa/instruments/clave",
        json=instrument_body("clave", title=title),
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/machines/salsa", "application/json"),
        ("/api/machines/salsa", "application/xml"),
        ("/api/machines/salsa.xml", "*/*"),
        ("/api/machines", "application/json"),
    ],
    ids=["json", "accept-xml", "xml-path", "list"],
)
async def test_get_carries_etag_and_cache_control(
    client: httpx.AsyncClient, salsa: dict[str, Any], path: str, accept: str
) -> None:
    response = await client.get(path, headers={"Accept": accept})

    assert response.status_code == 200, response.text
    # Weak: the same document goes out plain, gzip or brotli.
    assert response.headers["etag"].startswith('W/"') and response.headers["etag"].endswith('"')
    assert response.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=300"
    assert "Accept" in [v.strip() for v in response.headers["vary"].split(",")]


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/machines/salsa", "application/json"),
        ("/api/machines/salsa", "application/xml"),
        ("/api/machines/salsa.xml", "*/*"),
        ("/api/machines", "application/json"),
        ("/api/machines/salsa/versions/1", "application/json"),
    ],
    ids=["json", "accept-xml", "xml-path", "list", "version"],
)
async def test_if_none_match_with_the_etag_is_not_modified(
    client: httpx.AsyncClient, salsa: dict[str, Any], path: str, accept: str
) -> None:
    etag = (await client.get(path, headers={"Accept": accept})).headers["etag"]

    response = await client.get(path, headers={"Accept": accept, "If-None-Match": etag})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert "cache-control" in response.headers


async def test_if_none_match_compares_weakly(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    etag = (await client.get("/api/machines/salsa")).headers["etag"]

    response = await client.get(
        "/api/machines/salsa", headers={"If-None-Match": f'"other", {etag.removeprefix("W/")}'}
    )

    assert response.status_code == 304
    assert response.content == b""


async def test_if_none_match_with_another_etag_sends_the_document(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    response = await client.get("/api/machines/salsa", headers={"If-None-Match": '"stale"'})

    assert response.status_code == 200
    assert response.json()["data"] == salsa


async def test_json_and_xml_have_different_etags(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    json_tag = (await client.get("/api/machines/salsa")).headers["etag"]
    xml_tag = (await client.get("/api/machines/salsa.xml")).headers["etag"]

    assert json_tag != xml_tag
    response = await client.get("/api/machines/salsa.xml", headers={"If-None-Match": json_tag})
    assert response.status_code == 200


async def test_old_version_is_cached_as_immutable(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    response = await client.get("/api/machines/salsa/versions/1")

    assert response.headers["cache-control"] == "public, max-age=86400, immutable"
    assert response.headers["etag"]


@pytest.mark.parametrize("path", ["/api/machines/salsa", "/api/machines/salsa.xml"])
async def test_publish_changes_the_etag_and_serves_the_new_version(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], path: str
) -> None:
    before = await client.get(path)
    old_tag = before.headers["etag"]

    await change_clave(client, admin, "Wood Clave")
    response = await client.get(path, headers={"If-None-Match": old_tag})

    assert response.status_code == 200
    assert response.headers["etag"] != old_tag
    assert "Wood Clave" in response.text
    assert "Wood Clave" not in before.text


async def test_publish_serves_the_new_version_after_cached_reads(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any]
) -> None:
    for _ in range(2):  # the second read comes from the cache
        assert (await client.get("/api/machines/salsa")).json()["data"]["version"] == 1

    await change_clave(client, admin, "Wood Clave")
    data = (await client.get("/api/machines/salsa")).json()["data"]

    assert data["version"] == 2
    assert data["instruments"][0]["title"] == "Wood Clave"


async def test_list_etag_changes_when_a_machine_is_added(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any]
) -> None:
    old_tag = (await client.get("/api/machines")).headers["etag"]

    await import_real(client, admin, "merengue")
    response = await client.get("/api/machines", headers={"If-None-Match": old_tag})

    assert response.status_code == 200
    assert response.headers["etag"] != old_tag
    assert [m["id"] for m in response.json()["data"]["machines"]] == ["merengue", "salsa"]


async def test_rollback_is_served_at_once(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any]
) -> None:
    await change_clave(client, admin, "Wood Clave")
    assert (await client.get("/api/machines/salsa")).json()["data"]["version"] == 2

    await client.post("/api/machines/salsa/rollback", json={"version": 1}, headers=admin.headers)
    data = (await client.get("/api/machines/salsa")).json()["data"]

    assert data["version"] == 3
    assert data["instruments"][0]["title"] == "Clave"


async def test_a_publish_on_one_instance_is_served_by_another(
    backend: Backend,
    settings: Settings,
    client: httpx.AsyncClient,
    admin: Account,
    salsa: dict[str, Any],
) -> None:
    if backend.name != "postgres":
        pytest.skip("needs a shared Redis")
    other = create_app(settings)
    async with LifespanManager(other):
        transport = httpx.ASGITransport(app=other, client=("198.51.100.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as b:
            first = await b.get("/api/machines/salsa")
            assert first.json()["data"]["version"] == 1
            assert 'title="Clave"' in (await b.get("/api/machines/salsa.xml")).text
            assert (await b.get("/api/machines")).json()["data"]["machines"][0][
                "currentVersion"
            ] == 1
            cached = await b.get(
                "/api/machines/salsa", headers={"If-None-Match": first.headers["etag"]}
            )
            assert cached.status_code == 304

            await change_clave(client, admin, "Wood Clave")  # instance A publishes
            # B learns of the new generation over pub/sub, a moment after A's reply.
            await eventually(lambda: _serves_version(b, 2))
            response = await b.get(
                "/api/machines/salsa", headers={"If-None-Match": first.headers["etag"]}
            )
            xml = await b.get("/api/machines/salsa.xml")
            listed = await b.get("/api/machines")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["version"] == 2
    assert data["instruments"][0]["title"] == "Wood Clave"
    assert 'title="Wood Clave"' in xml.text
    assert listed.json()["data"]["machines"][0]["currentVersion"] == 2


async def test_a_stale_document_written_after_a_publish_is_never_served(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], state: AppState
) -> None:
    # A reader that loaded version 1 just before a publish files it in the cache late.
    stale = (await client.get("/api/machines/salsa")).content
    old_generation = await state.cache.generation(service.GENERATION).current()
    await change_clave(client, admin, "Wood Clave")
    await state.cache.set(service.document_cache_key(old_generation, "salsa", "json"), stale)

    response = await client.get("/api/machines/salsa")

    assert response.json()["data"]["version"] == 2
    assert response.json()["data"]["instruments"][0]["title"] == "Wood Clave"


@pytest.mark.parametrize("encoding", ["br", "gzip"])
@pytest.mark.parametrize("path", ["/api/machines/salsa", "/api/machines/salsa.xml"])
async def test_compressed_body_is_the_same_document(
    client: httpx.AsyncClient, salsa: dict[str, Any], path: str, encoding: str
) -> None:
    plain = await client.get(path, headers={"Accept-Encoding": "identity"})

    response = await client.get(path, headers={"Accept-Encoding": encoding})

    assert response.status_code == 200
    assert response.headers["content-encoding"] == encoding
    assert response.content == plain.content  # httpx decodes it
    assert response.headers["etag"] == plain.headers["etag"]
    assert "Accept-Encoding" in [v.strip() for v in response.headers["vary"].split(",")]


async def test_small_body_is_sent_uncompressed(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    response = await client.get("/api/machines", headers={"Accept-Encoding": "br"})

    assert response.status_code == 200
    assert len(response.content) < 1024
    assert "content-encoding" not in response.headers
    assert [m["id"] for m in response.json()["data"]["machines"]] == ["salsa"]


async def test_identity_request_gets_an_uncompressed_body(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    response = await client.get("/api/machines/salsa", headers={"Accept-Encoding": "identity"})

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.json()["data"] == salsa


async def test_browser_request_prefers_brotli(
    client: httpx.AsyncClient, salsa: dict[str, Any]
) -> None:
    response = await client.get(
        "/api/machines/salsa", headers={"Accept-Encoding": "gzip, deflate, br"}
    )

    assert response.headers["content-encoding"] == "br"
    assert response.json()["data"] == salsa


@pytest.mark.parametrize("encoding", ["br", "gzip"])
async def test_compressed_body_follows_a_publish(
    client: httpx.AsyncClient, admin: Account, salsa: dict[str, Any], encoding: str
) -> None:
    before = await client.get("/api/machines/salsa", headers={"Accept-Encoding": encoding})
    assert before.json()["data"]["version"] == 1

    await change_clave(client, admin, "Wood Clave")
    response = await client.get("/api/machines/salsa", headers={"Accept-Encoding": encoding})

    assert response.headers["content-encoding"] == encoding
    assert response.json()["data"]["version"] == 2
    assert response.json()["data"]["instruments"][0]["title"] == "Wood Clave"
