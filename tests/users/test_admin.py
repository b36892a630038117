"""Administrators: the ADMIN_EMAILS setting, `beatmachine create-admin`, the AdminUser
dependency, and that nobody can make themselves admin through the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.dependencies import AdminUser
from beatmachine.core.config import Settings, get_settings
from beatmachine.users.models import User
from tests.cli import point_cli_at, run_cli
from tests.factories import PASSWORD, assert_error, confirm_email, register, validation_fields
from tests.users.helpers import preferences_row, user_count, user_row

BOSS_EMAIL = "boss@example.com"
ADMIN_ROUTE = "/api/test-only/admin"

# A route that exists only in these tests, guarded by the reusable dependency.
admin_router = APIRouter()


@admin_router.get(ADMIN_ROUTE)
async def admin_only(user: AdminUser) -> dict[str, Any]:
    return {"success": True, "data": {"id": user.id}}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Mixed case and padding on purpose: the setting is matched case-insensitively.
    return {"ADMIN_EMAILS": " Boss@Example.com , second.boss@example.com"}


@pytest.fixture(autouse=True)
def mount_admin_route(app: FastAPI) -> None:
    app.include_router(admin_router)


@pytest.fixture
def cli_env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    point_cli_at(settings, tmp_path, monkeypatch)
    yield
    get_settings.cache_clear()


async def admin_ids(db: AsyncSession) -> list[str]:
    await db.rollback()
    result = await db.execute(select(User.id).where(User.is_admin.is_(True)))
    return list(result.scalars().all())


# --- ADMIN_EMAILS -------------------------------------------------------------------


async def test_account_listed_in_admin_emails_is_admin(client: httpx.AsyncClient) -> None:
    boss = await register(client, email=BOSS_EMAIL)
    await confirm_email(client, boss)

    response = await client.get("/api/users/me", headers=boss.headers)

    assert response.status_code == 200
    assert response.json()["data"]["isAdmin"] is True


async def test_admin_emails_match_regardless_of_case(client: httpx.AsyncClient) -> None:
    boss = await register(client, email="SECOND.Boss@EXAMPLE.com")
    await confirm_email(client, boss)

    response = await client.get("/api/users/me", headers=boss.headers)

    assert response.json()["data"]["isAdmin"] is True


async def test_listed_account_is_not_admin_before_its_email_is_confirmed(
    client: httpx.AsyncClient,
) -> None:
    # Otherwise whoever registers a listed address first would become admin.
    boss = await register(client, email=BOSS_EMAIL)

    response = await client.get("/api/users/me", headers=boss.headers)

    assert response.json()["data"]["isAdmin"] is False


async def test_account_not_listed_is_not_admin(client: httpx.AsyncClient) -> None:
    dancer = await register(client, email="not.boss@example.com")

    response = await client.get("/api/users/me", headers=dancer.headers)

    assert response.json()["data"]["isAdmin"] is False


# --- the AdminUser dependency ---------------------------------------------------------


async def test_admin_dependency_lets_an_admin_through(client: httpx.AsyncClient) -> None:
    boss = await register(client, email=BOSS_EMAIL)
    await confirm_email(client, boss)

    response = await client.get(ADMIN_ROUTE, headers=boss.headers)

    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"id": boss.id}}


async def test_admin_dependency_refuses_a_non_admin_with_403(client: httpx.AsyncClient) -> None:
    dancer = await register(client)

    response = await client.get(ADMIN_ROUTE, headers=dancer.headers)

    assert_error(response, 403, "UNAUTHORIZED")


async def test_admin_dependency_refuses_anonymous_with_401(client: httpx.AsyncClient) -> None:
    response = await client.get(ADMIN_ROUTE)

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_admin_dependency_refuses_a_bad_token_with_401(client: httpx.AsyncClient) -> None:
    response = await client.get(ADMIN_ROUTE, headers={"Authorization": "Bearer forged"})

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_admin_dependency_refuses_a_logged_out_admin_with_401(
    client: httpx.AsyncClient,
) -> None:
    boss = await register(client, email=BOSS_EMAIL)
    await confirm_email(client, boss)
    await client.post("/api/auth/logout", headers=boss.headers)

    response = await client.get(ADMIN_ROUTE, headers=boss.headers)

    assert_error(response, 401, "AUTH_REQUIRED")


# --- beatmachine create-admin -----------------------------------------------------------


@pytest.mark.usefixtures("cli_env")
async def test_create_admin_marks_the_account_admin_in_the_database(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    dancer = await register(client, email="promoted@example.com")

    result = await run_cli("create-admin", "promoted@example.com")

    assert result.exit_code == 0, result.output
    assert "promoted@example.com" in result.output
    assert (await user_row(db, dancer.id))["is_admin"] is True
    assert await admin_ids(db) == [dancer.id]


@pytest.mark.usefixtures("cli_env")
async def test_account_made_admin_by_the_cli_passes_the_admin_dependency(
    client: httpx.AsyncClient,
) -> None:
    dancer = await register(client, email="promoted@example.com")
    refused = await client.get(ADMIN_ROUTE, headers=dancer.headers)
    assert refused.status_code == 403

    result = await run_cli("create-admin", "promoted@example.com")

    assert result.exit_code == 0, result.output
    # The same, already issued token: admin rights are checked on every request.
    allowed = await client.get(ADMIN_ROUTE, headers=dancer.headers)
    assert allowed.status_code == 200
    me = await client.get("/api/users/me", headers=dancer.headers)
    assert me.json()["data"]["isAdmin"] is True


@pytest.mark.usefixtures("cli_env")
async def test_create_admin_finds_the_email_in_any_case(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    dancer = await register(client, email="mixed.case@example.com")

    result = await run_cli("create-admin", "  Mixed.Case@EXAMPLE.com ")

    assert result.exit_code == 0, result.output
    assert (await user_row(db, dancer.id))["is_admin"] is True


@pytest.mark.usefixtures("cli_env")
async def test_create_admin_with_an_unknown_email_exits_1_and_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await register(client, email="bystander@example.com")

    result = await run_cli("create-admin", "nobody@example.com")

    assert result.exit_code == 1
    assert "nobody@example.com" in result.output
    assert await admin_ids(db) == []


# --- no self-promotion through the API ------------------------------------------------


@pytest.mark.parametrize("field", ["isAdmin", "is_admin", "admin", "role"])
async def test_register_with_an_admin_field_is_refused_and_creates_nothing(
    client: httpx.AsyncClient, db: AsyncSession, field: str
) -> None:
    email = "climber@example.com"

    response = await client.post(
        "/api/auth/register",
        json={
            "email": email,
            "password": PASSWORD,
            "displayName": "Climber",
            "acceptTerms": True,
            field: "admin" if field == "role" else True,
        },
    )

    assert validation_fields(response) == {field}
    assert await user_count(db, email) == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"isAdmin": True}, id="isAdmin"),
        pytest.param({"is_admin": True}, id="is_admin"),
        pytest.param({"displayName": "Sneaky", "isAdmin": True}, id="with_valid_field"),
        pytest.param({"isAdmin": "true"}, id="isAdmin_string"),
    ],
)
async def test_profile_update_with_an_admin_field_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, body: dict[str, Any]
) -> None:
    dancer = await register(client, display_name="Honest")
    before = await user_row(db, dancer.id)

    response = await client.put("/api/users/me", headers=dancer.headers, json=body)

    fields = validation_fields(response)
    assert fields == {next(key for key in body if "dmin" in key)}
    after = await user_row(db, dancer.id)
    assert after == before
    assert after["is_admin"] is False


@pytest.mark.parametrize("field", ["isAdmin", "is_admin"])
async def test_preferences_update_with_an_admin_field_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, field: str
) -> None:
    dancer = await register(client)
    before_user = await user_row(db, dancer.id)
    before_preferences = await preferences_row(db, dancer.id)

    response = await client.put(
        "/api/users/me/preferences", headers=dancer.headers, json={"defaultBpm": 99, field: True}
    )

    assert validation_fields(response) == {field}
    assert await user_row(db, dancer.id) == before_user
    assert await preferences_row(db, dancer.id) == before_preferences


async def test_self_promotion_attempts_leave_the_account_without_admin_rights(
    client: httpx.AsyncClient,
) -> None:
    dancer = await register(client)
    for url, body in [
        ("/api/users/me", {"isAdmin": True}),
        ("/api/users/me", {"is_admin": True}),
        ("/api/users/me/preferences", {"isAdmin": True}),
    ]:
        assert (await client.put(url, headers=dancer.headers, json=body)).status_code == 422

    me = await client.get("/api/users/me", headers=dancer.headers)
    guarded = await client.get(ADMIN_ROUTE, headers=dancer.headers)

    assert me.json()["data"]["isAdmin"] is False
    assert_error(guarded, 403, "UNAUTHORIZED")
