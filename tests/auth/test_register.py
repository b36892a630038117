"""POST /api/auth/register: the 201 shape, duplicate emails, every validation rule."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.users.models import User
from tests.factories import PASSWORD, assert_error, register, unique_email, validation_fields

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
USER_ID = re.compile(r"^usr_[0-9a-z]{16}$")


def body(**changes: Any) -> dict[str, Any]:
    """A valid registration body with `changes` applied (a value of `...` drops the field)."""
    values: dict[str, Any] = {
        "email": unique_email("signup"),
        "password": PASSWORD,
        "displayName": "Salsa Dancer",
        "acceptTerms": True,
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not ...}


async def user_count(db: AsyncSession) -> int:
    await db.rollback()
    return int((await db.execute(select(func.count()).select_from(User))).scalar_one())


async def stored_user(db: AsyncSession, user_id: str) -> User:
    await db.rollback()
    db.expire_all()
    return (await db.execute(select(User).where(User.id == user_id))).unique().scalar_one()


async def test_register_returns_201_with_user_and_tokens(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await client.post(
        "/api/auth/register", json=body(email="New.Dancer@Example.COM", displayName="Ana")
    )

    assert response.status_code == 201, response.text
    payload = response.json()
    assert payload["success"] is True
    data = payload["data"]
    assert set(data) == {"user", "token", "refreshToken", "tokenType", "expiresIn"}
    assert set(data["user"]) == {"id", "email", "displayName", "createdAt"}
    assert USER_ID.match(data["user"]["id"])
    assert data["user"]["email"] == "new.dancer@example.com"
    assert data["user"]["displayName"] == "Ana"
    assert ISO_Z.match(data["user"]["createdAt"])
    assert isinstance(data["token"], str) and data["token"].count(".") == 2
    assert isinstance(data["refreshToken"], str) and data["refreshToken"]
    assert data["refreshToken"] != data["token"]
    assert data["tokenType"] == "Bearer"
    assert data["expiresIn"] == 900
    user = await stored_user(db, data["user"]["id"])
    assert user.email == "new.dancer@example.com"
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")


async def test_register_token_signs_the_new_user_in(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/register", json=body())
    data = response.json()["data"]

    me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {data['token']}"})

    assert me.status_code == 200, me.text
    assert me.json()["data"]["id"] == data["user"]["id"]


@pytest.mark.parametrize("second", ["dup@example.com", "DUP@Example.com", "Dup@EXAMPLE.COM"])
async def test_register_duplicate_email_in_any_case_is_user_exists(
    client: httpx.AsyncClient, db: AsyncSession, second: str
) -> None:
    await register(client, email="dup@example.com")

    response = await client.post("/api/auth/register", json=body(email=second))

    assert_error(response, 409, "USER_EXISTS")
    await db.rollback()
    emails = (
        (await db.execute(select(User.email).where(func.lower(User.email) == "dup@example.com")))
        .scalars()
        .all()
    )
    assert emails == ["dup@example.com"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "dancer@"}, "email"),
        ({"email": ""}, "email"),
        ({"email": ...}, "email"),
        ({"password": "Short1!"}, "password"),
        ({"password": ...}, "password"),
        ({"password": "aaaaaaaaaaaa"}, "password"),
        ({"password": "abababababab"}, "password"),
        ({"password": "        "}, "password"),
        ({"password": "Ab1!" * 32 + "x"}, "password"),
        ({"displayName": ""}, "displayName"),
        ({"displayName": "   "}, "displayName"),
        ({"displayName": "x" * 101}, "displayName"),
        ({"displayName": "<b></b>"}, "displayName"),
        ({"displayName": "<script>alert(1)</script>"}, "displayName"),
        ({"displayName": ...}, "displayName"),
        ({"acceptTerms": False}, "acceptTerms"),
        ({"acceptTerms": ...}, "acceptTerms"),
        ({"emailVerified": True}, "emailVerified"),
        ({"display_name": "Snake"}, "display_name"),
    ],
    ids=[
        "email-no-at",
        "email-no-domain",
        "email-empty",
        "email-missing",
        "password-7-chars",
        "password-missing",
        "password-one-character",
        "password-two-characters",
        "password-blank",
        "password-129-chars",
        "displayName-empty",
        "displayName-blank",
        "displayName-101-chars",
        "displayName-only-markup",
        "displayName-only-script",
        "displayName-missing",
        "acceptTerms-false",
        "acceptTerms-missing",
        "extra-emailVerified",
        "extra-snake-case-field",
    ],
)
async def test_register_invalid_body_is_validation_error_and_creates_nobody(
    client: httpx.AsyncClient, db: AsyncSession, changes: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/auth/register", json=body(**changes))

    assert field in validation_fields(response)
    assert await user_count(db) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": 12345}, "email"),
        ({"email": ["a@example.com"]}, "email"),
        ({"password": 1234567890}, "password"),
        ({"password": None}, "password"),
        ({"displayName": 42}, "displayName"),
        ({"displayName": {"name": "Ana"}}, "displayName"),
        ({"acceptTerms": "true"}, "acceptTerms"),
        ({"acceptTerms": "yes"}, "acceptTerms"),
        ({"acceptTerms": 1}, "acceptTerms"),
        ({"acceptTerms": None}, "acceptTerms"),
    ],
    ids=[
        "email-number",
        "email-list",
        "password-number",
        "password-null",
        "displayName-number",
        "displayName-object",
        "acceptTerms-string-true",
        "acceptTerms-yes",
        "acceptTerms-one",
        "acceptTerms-null",
    ],
)
async def test_register_wrong_json_type_is_validation_error(
    client: httpx.AsyncClient, db: AsyncSession, changes: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/auth/register", json=body(**changes))

    assert field in validation_fields(response)
    assert await user_count(db) == 0


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"null", b"{not json"])
async def test_register_body_that_is_not_a_json_object_is_validation_error(
    client: httpx.AsyncClient, db: AsyncSession, raw: bytes
) -> None:
    response = await client.post(
        "/api/auth/register", content=raw, headers={"Content-Type": "application/json"}
    )

    assert_error(response, 422, "VALIDATION_ERROR")
    assert await user_count(db) == 0


async def test_register_validation_error_names_every_bad_field(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/auth/register",
        json={"email": "nope", "password": "short", "displayName": "", "acceptTerms": False},
    )

    assert validation_fields(response) == {"email", "password", "displayName", "acceptTerms"}


async def test_register_validation_error_does_not_echo_the_password(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/register", json=body(password="Zq7!"))

    assert "password" in validation_fields(response)
    assert "Zq7!" not in response.text


@pytest.mark.parametrize(
    ("display_name", "stored"),
    [
        ("<b>Salsa</b> Queen", "Salsa Queen"),
        ('<img src=x onerror="alert(1)">Ana', "Ana"),
        ("Ana<script>alert(1)</script>", "Ana"),
        ("  Rueda Fan  ", "Rueda Fan"),
    ],
)
async def test_register_display_name_is_stored_without_markup(
    client: httpx.AsyncClient, db: AsyncSession, display_name: str, stored: str
) -> None:
    response = await client.post("/api/auth/register", json=body(displayName=display_name))

    assert response.status_code == 201, response.text
    user = response.json()["data"]["user"]
    assert user["displayName"] == stored
    assert (await stored_user(db, user["id"])).display_name == stored


async def test_register_display_name_of_100_characters_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/register", json=body(displayName="x" * 100))

    assert response.status_code == 201, response.text
    assert response.json()["data"]["user"]["displayName"] == "x" * 100


async def test_register_password_of_8_characters_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/register", json=body(password="Tumbao1!"))

    assert response.status_code == 201, response.text


async def test_register_mass_assignment_does_not_make_an_admin(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    email = unique_email("sneaky")

    response = await client.post("/api/auth/register", json=body(email=email, isAdmin=True))

    assert validation_fields(response) == {"isAdmin"}
    await db.rollback()
    assert (await db.execute(select(User).where(User.email == email))).first() is None
