"""POST /api/auth/login: the 200 shape, wrong credentials, bcrypt migration, throttling."""

from __future__ import annotations

from typing import Any

import bcrypt
import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.state import AppState
from beatmachine.users.models import User
from tests.factories import PASSWORD, assert_error, login, register, unique_email

FAIL_LIMIT = 3


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"LOGIN_FAIL_LIMIT_ACCOUNT": FAIL_LIMIT, "LOGIN_FAIL_LIMIT_IP": 6}


async def password_hash(db: AsyncSession, user_id: str) -> str | None:
    await db.rollback()
    return (await db.execute(select(User.password_hash).where(User.id == user_id))).scalar_one()


async def set_password_hash(db: AsyncSession, user_id: str, value: str) -> None:
    await db.execute(update(User).where(User.id == user_id).values(password_hash=value))
    await db.commit()


async def test_login_returns_user_and_token(client: httpx.AsyncClient) -> None:
    account = await register(client, display_name="Ana")

    response = await login(client, account.email)

    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["success"] is True
    data = payload["data"]
    assert set(data) == {"user", "token", "refreshToken", "tokenType", "expiresIn"}
    assert data["user"] == {"id": account.id, "email": account.email, "displayName": "Ana"}
    assert data["token"].count(".") == 2
    assert data["tokenType"] == "Bearer"
    assert data["expiresIn"] == 900


async def test_login_token_authenticates(client: httpx.AsyncClient) -> None:
    account = await register(client)
    token = (await login(client, account.email)).json()["data"]["token"]

    me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})

    assert me.status_code == 200, me.text
    assert me.json()["data"]["id"] == account.id


async def test_login_wrong_password_is_invalid_credentials(client: httpx.AsyncClient) -> None:
    account = await register(client)

    response = await login(client, account.email, "not the password")

    assert_error(response, 401, "INVALID_CREDENTIALS")


async def test_login_unknown_email_is_invalid_credentials(client: httpx.AsyncClient) -> None:
    response = await login(client, "nobody@example.com")

    assert_error(response, 401, "INVALID_CREDENTIALS")


async def test_login_unknown_email_and_wrong_password_answer_alike(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)

    wrong_password = assert_error(
        await login(client, account.email, "nope nope"), 401, "INVALID_CREDENTIALS"
    )
    unknown_email = assert_error(
        await login(client, "ghost@example.com"), 401, "INVALID_CREDENTIALS"
    )

    assert wrong_password == unknown_email


@pytest.mark.parametrize("typed", ["MIXED.Case@Example.COM", "mixed.case@example.com"])
async def test_login_email_is_case_insensitive(client: httpx.AsyncClient, typed: str) -> None:
    account = await register(client, email="Mixed.Case@example.com")

    response = await login(client, typed)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["user"]["id"] == account.id
    assert response.json()["data"]["user"]["email"] == "mixed.case@example.com"


async def test_login_password_is_case_sensitive(client: httpx.AsyncClient) -> None:
    account = await register(client, password="Clave Son 3-2")

    response = await login(client, account.email, "clave son 3-2")

    assert_error(response, 401, "INVALID_CREDENTIALS")


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "a@example.com"},
        {"password": PASSWORD},
        {"email": "", "password": PASSWORD},
        {"email": "a@example.com", "password": ""},
        {"email": 5, "password": PASSWORD},
        {"email": "a@example.com", "password": PASSWORD, "remember": True},
    ],
    ids=["no-password", "no-email", "empty-email", "empty-password", "email-number", "extra"],
)
async def test_login_malformed_body_is_validation_error(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await client.post("/api/auth/login", json=payload)

    assert_error(response, 422, "VALIDATION_ERROR")


async def test_login_with_bcrypt_hash_succeeds(client: httpx.AsyncClient, db: AsyncSession) -> None:
    account = await register(client)
    legacy = bcrypt.hashpw(b"node stack password", bcrypt.gensalt(rounds=4)).decode()
    await set_password_hash(db, account.id, legacy)

    response = await login(client, account.email, "node stack password")

    assert response.status_code == 200, response.text
    assert response.json()["data"]["user"]["id"] == account.id


async def test_login_with_bcrypt_hash_rehashes_to_argon2id(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    legacy = bcrypt.hashpw(b"node stack password", bcrypt.gensalt(rounds=4)).decode()
    await set_password_hash(db, account.id, legacy)

    await login(client, account.email, "node stack password")

    stored = await password_hash(db, account.id)
    assert stored is not None and stored.startswith("$argon2id$")
    assert (await login(client, account.email, "node stack password")).status_code == 200


async def test_login_wrong_password_keeps_bcrypt_hash(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    legacy = bcrypt.hashpw(b"node stack password", bcrypt.gensalt(rounds=4)).decode()
    await set_password_hash(db, account.id, legacy)

    response = await login(client, account.email, "not it at all")

    assert_error(response, 401, "INVALID_CREDENTIALS")
    assert await password_hash(db, account.id) == legacy


async def test_login_oauth_only_account_has_no_password(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    await db.execute(update(User).where(User.id == account.id).values(password_hash=None))
    await db.commit()

    response = await login(client, account.email, PASSWORD)

    assert_error(response, 401, "INVALID_CREDENTIALS")


async def test_login_unknown_email_still_verifies_a_password(
    client: httpx.AsyncClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = state.passwords._verify_argon2

    def counting(password_hash: str, password: str) -> bool:
        calls.append(password)
        return original(password_hash, password)

    monkeypatch.setattr(state.passwords, "_verify_argon2", counting)

    response = await login(client, "ghost@example.com", "some guess")

    assert_error(response, 401, "INVALID_CREDENTIALS")
    assert calls == ["some guess"]


async def test_login_failures_up_to_the_account_limit_answer_invalid_credentials(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)

    for _ in range(FAIL_LIMIT):
        assert_error(await login(client, account.email, "wrong guess"), 401, "INVALID_CREDENTIALS")


async def test_login_after_account_failure_limit_is_rate_limited_even_with_right_password(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    for _ in range(FAIL_LIMIT):
        await login(client, account.email, "wrong guess")

    response = await login(client, account.email, PASSWORD)

    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "settings_overrides",
    [{"RATE_LIMIT_ENABLED": False, "LOGIN_FAIL_LIMIT_ACCOUNT": FAIL_LIMIT}],
)
async def test_failed_sign_ins_stay_throttled_with_request_limits_switched_off(
    client: httpx.AsyncClient,
) -> None:
    """RATE_LIMIT_ENABLED=false switches off the request and creation limits only: the
    failed-password throttle is a defence, not a quota."""
    account = await register(client)
    for _ in range(FAIL_LIMIT):
        await login(client, account.email, "wrong guess")

    response = await login(client, account.email, PASSWORD)

    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert "x-ratelimit-limit" not in response.headers


async def test_login_account_throttle_ignores_email_case(client: httpx.AsyncClient) -> None:
    account = await register(client, email="Throttle.Me@example.com")
    for typed in ("throttle.me@example.com", "THROTTLE.ME@EXAMPLE.COM", "Throttle.Me@Example.com"):
        await login(client, typed, "wrong guess")

    response = await login(client, account.email, PASSWORD)

    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")


async def test_login_account_throttle_leaves_other_accounts_alone(
    client: httpx.AsyncClient,
) -> None:
    victim = await register(client)
    other = await register(client)
    for _ in range(FAIL_LIMIT):
        await login(client, victim.email, "wrong guess")

    response = await login(client, other.email, PASSWORD)

    assert response.status_code == 200, response.text


async def test_login_ip_throttle_applies_across_accounts(client: httpx.AsyncClient) -> None:
    accounts = [await register(client) for _ in range(3)]
    # Two failures per account: never the account limit, six in total from one IP.
    for account in accounts:
        for _ in range(FAIL_LIMIT - 1):
            assert_error(await login(client, account.email, "wrong"), 401, "INVALID_CREDENTIALS")
    fresh = await register(client)

    response = await login(client, fresh.email, PASSWORD)

    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert int(response.headers["Retry-After"]) >= 1


async def test_login_ip_throttle_counts_unknown_emails(client: httpx.AsyncClient) -> None:
    for _ in range(6):
        await login(client, unique_email("ghost"), "wrong")
    account = await register(client)

    response = await login(client, account.email, PASSWORD)

    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")


async def test_login_success_clears_the_account_failure_count(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    for _ in range(FAIL_LIMIT - 1):
        await login(client, account.email, "wrong guess")
    assert (await login(client, account.email)).status_code == 200
    for _ in range(FAIL_LIMIT - 1):
        assert_error(await login(client, account.email, "wrong guess"), 401, "INVALID_CREDENTIALS")

    response = await login(client, account.email)

    assert response.status_code == 200, response.text
