"""`/api/admin/webhooks`: administrators register, list, change, disable, delete
endpoints and rotate their secrets; everyone else is refused; bad input is a 422 or 404
that changes nothing."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.factories import Account, assert_error, validation_fields
from tests.users.helpers import ISO_Z
from tests.webhooks.helpers import ALL_EVENTS, BASE, create_endpoint, get_ok

URL = "https://hooks.example.com/beatmachine"
ENDPOINT_FIELDS = {
    "id",
    "url",
    "description",
    "events",
    "enabled",
    "disabledAt",
    "disabledReason",
    "failingSince",
    "secretRotatedAt",
    "previousSecretExpiresAt",
    "createdAt",
    "updatedAt",
}


def _parsed(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _total(client: httpx.AsyncClient, admin: Account) -> int:
    return int((await get_ok(client, admin, ""))["pagination"]["total"])


async def test_registering_an_endpoint_returns_it_with_its_secret_once(
    client: httpx.AsyncClient, admin: Account
) -> None:
    data = await create_endpoint(
        client, admin, URL, ["pattern.created", "comment.created"], description="CRM sync"
    )

    assert set(data) == ENDPOINT_FIELDS | {"secret"}
    assert data["id"].startswith("whk_")
    assert data["url"] == URL
    assert data["events"] == ["pattern.created", "comment.created"]
    assert data["description"] == "CRM sync"
    assert data["enabled"] is True
    assert data["disabledAt"] is None and data["failingSince"] is None
    assert ISO_Z.match(data["createdAt"])
    assert data["secret"].startswith("whsec_")
    assert len(base64.b64decode(data["secret"].removeprefix("whsec_"))) == 32


async def test_reading_an_endpoint_never_shows_its_secret(
    client: httpx.AsyncClient, admin: Account
) -> None:
    created = await create_endpoint(client, admin, URL)

    data = await get_ok(client, admin, f"/{created['id']}")

    assert set(data) == ENDPOINT_FIELDS
    assert data["id"] == created["id"]


async def test_repeated_events_are_kept_once(client: httpx.AsyncClient, admin: Account) -> None:
    data = await create_endpoint(client, admin, URL, ["user.followed", "user.followed"])

    assert data["events"] == ["user.followed"]


async def test_endpoints_are_listed_newest_first_in_pages(
    client: httpx.AsyncClient, admin: Account
) -> None:
    ids = [(await create_endpoint(client, admin, f"{URL}/{n}"))["id"] for n in range(3)]

    data = await get_ok(client, admin, "?page=1&limit=2")

    assert [item["id"] for item in data["endpoints"]] == [ids[2], ids[1]]
    assert data["pagination"] == {"page": 1, "limit": 2, "total": 3, "pages": 2}
    assert "secret" not in data["endpoints"][0]


async def test_an_endpoint_is_changed_by_the_fields_sent(
    client: httpx.AsyncClient, admin: Account
) -> None:
    created = await create_endpoint(client, admin, URL, description="old")

    response = await client.patch(
        f"{BASE}/{created['id']}",
        json={"url": f"{URL}/v2", "events": ["pattern.liked"]},
        headers=admin.headers,
    )

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["url"] == f"{URL}/v2"
    assert data["events"] == ["pattern.liked"]
    assert data["description"] == "old"


async def test_an_admin_disables_an_endpoint_and_enables_it_again(
    client: httpx.AsyncClient, admin: Account
) -> None:
    created = await create_endpoint(client, admin, URL)
    path = f"{BASE}/{created['id']}"

    disabled = await client.patch(path, json={"enabled": False}, headers=admin.headers)
    enabled = await client.patch(path, json={"enabled": True}, headers=admin.headers)

    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["data"]["enabled"] is False
    assert disabled.json()["data"]["disabledReason"] == "admin"
    assert ISO_Z.match(disabled.json()["data"]["disabledAt"])
    assert enabled.json()["data"]["enabled"] is True
    assert enabled.json()["data"]["disabledReason"] is None
    assert enabled.json()["data"]["disabledAt"] is None


async def test_a_deleted_endpoint_is_gone(client: httpx.AsyncClient, admin: Account) -> None:
    created = await create_endpoint(client, admin, URL)

    response = await client.delete(f"{BASE}/{created['id']}", headers=admin.headers)

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"message": "Webhook endpoint deleted."}
    gone = await client.get(f"{BASE}/{created['id']}", headers=admin.headers)
    assert_error(gone, 404, "WEBHOOK_NOT_FOUND")


async def test_rotating_the_secret_returns_a_new_one_and_the_overlap(
    client: httpx.AsyncClient, admin: Account
) -> None:
    created = await create_endpoint(client, admin, URL)

    response = await client.post(f"{BASE}/{created['id']}/rotate-secret", headers=admin.headers)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert set(data) == {"secret", "previousSecretExpiresAt", "endpoint"}
    assert data["secret"].startswith("whsec_") and data["secret"] != created["secret"]
    rotated = _parsed(data["endpoint"]["secretRotatedAt"])
    expires = _parsed(data["previousSecretExpiresAt"])
    assert expires - rotated == timedelta(days=1)


# --- who may ------------------------------------------------------------------------

ROUTES = [
    ("GET", ""),
    ("POST", ""),
    ("GET", "/whk_x"),
    ("PATCH", "/whk_x"),
    ("DELETE", "/whk_x"),
    ("POST", "/whk_x/rotate-secret"),
    ("GET", "/whk_x/deliveries"),
    ("POST", "/whk_x/test"),
    ("GET", "/deliveries/whd_x"),
    ("POST", "/deliveries/whd_x/redeliver"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_anonymous_callers_are_refused(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    body = {"url": URL, "events": ALL_EVENTS} if method in ("POST", "PATCH") else None
    response = await client.request(method, f"{BASE}{path}", json=body)

    assert_error(response, 401, "AUTH_REQUIRED")


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_signed_in_non_admins_are_refused(
    client: httpx.AsyncClient, other: Account, method: str, path: str
) -> None:
    body = {"url": URL, "events": ALL_EVENTS} if method in ("POST", "PATCH") else None
    response = await client.request(method, f"{BASE}{path}", json=body, headers=other.headers)

    assert_error(response, 403, "UNAUTHORIZED")


# --- bad input ----------------------------------------------------------------------

BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown event", {"url": URL, "events": ["pattern.deleted"]}, "events.0"),
    ("empty events", {"url": URL, "events": []}, "events"),
    ("no events", {"url": URL}, "events"),
    ("events not a list", {"url": URL, "events": "pattern.created"}, "events"),
    ("no url", {"events": ALL_EVENTS}, "url"),
    ("empty url", {"url": "", "events": ALL_EVENTS}, "url"),
    ("ftp url", {"url": "ftp://hooks.example.com/x", "events": ALL_EVENTS}, "url"),
    ("no host", {"url": "https:///x", "events": ALL_EVENTS}, "url"),
    ("credentials", {"url": "https://a:b@hooks.example.com/", "events": ALL_EVENTS}, "url"),
    ("not a url", {"url": "hooks dot example", "events": ALL_EVENTS}, "url"),
    ("private ip", {"url": "http://10.1.2.3/hook", "events": ALL_EVENTS}, "url"),
    ("link-local ip", {"url": "http://169.254.169.254/", "events": ALL_EVENTS}, "url"),
    ("ipv6 private", {"url": "http://[fd00::1]/hook", "events": ALL_EVENTS}, "url"),
    ("url too long", {"url": URL + "/" + "a" * 2048, "events": ALL_EVENTS}, "url"),
    (
        "description too long",
        {"url": URL, "events": ALL_EVENTS, "description": "d" * 501},
        "description",
    ),
    ("unknown field", {"url": URL, "events": ALL_EVENTS, "secret": "whsec_x"}, "secret"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
async def test_a_bad_registration_is_refused_and_registers_nothing(
    client: httpx.AsyncClient, admin: Account, case: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(BASE, json=body, headers=admin.headers)

    assert field in validation_fields(response)
    assert await _total(client, admin) == 0


BAD_CHANGES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown event", {"events": ["user.unfollowed"]}, "events.0"),
    ("empty events", {"events": []}, "events"),
    ("null events", {"events": None}, "events"),
    ("null enabled", {"enabled": None}, "enabled"),
    ("bad url", {"url": "javascript:alert(1)"}, "url"),
    ("private ip", {"url": "http://192.168.0.10/"}, "url"),
    ("url too long", {"url": URL + "/" + "a" * 2048}, "url"),
    ("description too long", {"description": "d" * 501}, "description"),
    ("unknown field", {"secret": "whsec_x"}, "secret"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_CHANGES, ids=[c[0] for c in BAD_CHANGES])
async def test_a_bad_change_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, admin: Account, case: str, body: dict[str, Any], field: str
) -> None:
    created = await create_endpoint(client, admin, URL)

    response = await client.patch(f"{BASE}/{created['id']}", json=body, headers=admin.headers)

    assert field in validation_fields(response)
    after = await get_ok(client, admin, f"/{created['id']}")
    assert after["url"] == URL and after["events"] == ALL_EVENTS
    assert after["updatedAt"] == created["updatedAt"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/whk_missing"),
        ("PATCH", "/whk_missing"),
        ("DELETE", "/whk_missing"),
        ("POST", "/whk_missing/rotate-secret"),
        ("GET", "/whk_missing/deliveries"),
        ("POST", "/whk_missing/test"),
    ],
)
async def test_an_unknown_endpoint_is_not_found(
    client: httpx.AsyncClient, admin: Account, method: str, path: str
) -> None:
    body = {"description": "x"} if method == "PATCH" else None
    response = await client.request(method, f"{BASE}{path}", json=body, headers=admin.headers)

    assert_error(response, 404, "WEBHOOK_NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/deliveries/whd_missing"), ("POST", "/deliveries/whd_missing/redeliver")],
)
async def test_an_unknown_delivery_is_not_found(
    client: httpx.AsyncClient, admin: Account, method: str, path: str
) -> None:
    response = await client.request(method, f"{BASE}{path}", headers=admin.headers)

    assert_error(response, 404, "WEBHOOK_DELIVERY_NOT_FOUND")


async def test_a_bad_delivery_status_filter_is_refused(
    client: httpx.AsyncClient, admin: Account
) -> None:
    created = await create_endpoint(client, admin, URL)

    response = await client.get(
        f"{BASE}/{created['id']}/deliveries?status=lost", headers=admin.headers
    )

    assert "query.status" in validation_fields(response)
