"""Password reset by e-mail, delivered through a real SMTP server on loopback."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.models import AuthSession, OneTimeToken
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.users.models import User
from tests.factories import Account, assert_error, login, register, unique_email, validation_fields
from tests.jobs import settle
from tests.smtp_server import (
    MessageFilter,
    SmtpServer,
    body_text,
    link_token,
    smtp_server_fixture,  # noqa: F401  (the smtp_server fixture)
    to_address,
    with_subject,
)

APP_URL = "http://localhost:3009"
RESET_LINK = f"{APP_URL}/reset-password"
RESET_SUBJECT = "Reset your Beat Machine password"
FORGOT_MESSAGE = "If an account exists for this email, a reset link is on its way."
NEW_PASSWORD = "a brand new secret"


@pytest.fixture
def settings_overrides(smtp_server: SmtpServer) -> dict[str, Any]:
    return {"SMTP_URL": smtp_server.url, "APP_URL": APP_URL}


def reset_mails_to(email: str) -> MessageFilter:
    is_to, is_reset = to_address(email), with_subject(RESET_SUBJECT)
    return lambda message: is_to(message) and is_reset(message)


async def request_reset(
    client: httpx.AsyncClient, state: AppState, server: SmtpServer, email: str
) -> str:
    """Ask for a reset link and return the token from the mail that arrives."""
    before = len(server.received(reset_mails_to(email)))
    response = await client.post("/api/auth/forgot-password", json={"email": email})
    assert response.status_code == 200, response.text
    await settle(state)
    mails = await server.wait_for(reset_mails_to(email), count=before + 1)
    return link_token(mails[-1], RESET_LINK)


async def reset(client: httpx.AsyncClient, token: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/auth/reset-password", json={"token": token, "newPassword": password}
    )


async def password_hash(db: AsyncSession, user_id: str) -> str | None:
    db.expire_all()
    return (await db.execute(select(User.password_hash).where(User.id == user_id))).scalar_one()


async def reset_tokens(db: AsyncSession, user_id: str) -> list[OneTimeToken]:
    db.expire_all()
    result = await db.execute(
        select(OneTimeToken).where(
            OneTimeToken.user_id == user_id, OneTimeToken.purpose == "password_reset"
        )
    )
    return list(result.scalars().all())


async def test_forgot_password_mails_a_reset_link_to_the_account(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
) -> None:
    account = await register(client, display_name="Rueda Rosa")

    response = await client.post("/api/auth/forgot-password", json={"email": account.email})

    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"message": FORGOT_MESSAGE}}
    await settle(state)
    [mail] = await smtp_server.wait_for(reset_mails_to(account.email))
    assert mail["To"] == account.email
    assert mail["From"] == state.settings.mail_from
    assert "Rueda Rosa" in body_text(mail)
    assert link_token(mail, RESET_LINK)


async def test_forgot_password_accepts_the_email_in_any_case(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
) -> None:
    account = await register(client)

    response = await client.post("/api/auth/forgot-password", json={"email": account.email.upper()})

    assert response.status_code == 200
    await settle(state)
    assert len(await smtp_server.wait_for(reset_mails_to(account.email))) == 1


async def test_reset_password_sets_the_new_password(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
) -> None:
    account = await register(client)
    token = await request_reset(client, state, smtp_server, account.email)

    response = await reset(client, token, NEW_PASSWORD)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert set(body["data"]) == {"message"} and body["data"]["message"]
    assert (await login(client, account.email, NEW_PASSWORD)).status_code == 200
    assert_error(await login(client, account.email, account.password), 401, "INVALID_CREDENTIALS")


async def test_reset_token_works_only_once(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
    db: AsyncSession,
) -> None:
    account = await register(client)
    token = await request_reset(client, state, smtp_server, account.email)
    assert (await reset(client, token, NEW_PASSWORD)).status_code == 200
    hash_after_first_reset = await password_hash(db, account.id)

    response = await reset(client, token, "yet another password")

    assert_error(response, 400, "INVALID_TOKEN")
    assert await password_hash(db, account.id) == hash_after_first_reset
    assert (await login(client, account.email, NEW_PASSWORD)).status_code == 200


async def test_reset_voids_the_other_reset_links_of_the_account(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
) -> None:
    account = await register(client)
    first = await request_reset(client, state, smtp_server, account.email)
    second = await request_reset(client, state, smtp_server, account.email)
    assert first != second
    assert (await reset(client, second, NEW_PASSWORD)).status_code == 200

    assert_error(await reset(client, first, "yet another password"), 400, "INVALID_TOKEN")


async def test_forgot_password_answers_the_same_for_an_unknown_email_and_sends_nothing(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
    db: AsyncSession,
) -> None:
    account = await register(client)
    unknown = unique_email("nobody")

    known_response = await client.post("/api/auth/forgot-password", json={"email": account.email})
    unknown_response = await client.post("/api/auth/forgot-password", json={"email": unknown})

    assert unknown_response.status_code == known_response.status_code == 200
    assert unknown_response.json() == known_response.json()
    await settle(state)
    await smtp_server.wait_for(reset_mails_to(account.email))
    assert smtp_server.received(to_address(unknown)) == []
    assert [recipients for _, recipients in smtp_server.envelopes if unknown in recipients] == []
    assert len(await reset_tokens(db, account.id)) == 1


async def test_forgot_password_with_an_invalid_email_is_a_validation_error(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
    db: AsyncSession,
) -> None:
    response = await client.post("/api/auth/forgot-password", json={"email": "not-an-email"})

    assert validation_fields(response) == {"email"}
    await settle(state)
    assert smtp_server.received(with_subject(RESET_SUBJECT)) == []
    assert (await db.execute(select(OneTimeToken))).scalars().all() == []


async def test_reset_token_is_stored_only_as_a_hash(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
    db: AsyncSession,
) -> None:
    account = await register(client)
    token = await request_reset(client, state, smtp_server, account.email)

    rows = (await db.execute(text("SELECT * FROM one_time_tokens"))).all()

    assert len(rows) >= 1
    for row in rows:
        for value in row:
            assert token not in str(value)


async def test_expired_reset_token_is_refused_and_the_password_stays(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
    db: AsyncSession,
) -> None:
    account = await register(client)
    token = await request_reset(client, state, smtp_server, account.email)
    await db.execute(
        update(OneTimeToken)
        .where(OneTimeToken.user_id == account.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()
    hash_before = await password_hash(db, account.id)

    response = await reset(client, token, NEW_PASSWORD)

    assert_error(response, 400, "INVALID_TOKEN")
    assert await password_hash(db, account.id) == hash_before
    assert (await login(client, account.email, account.password)).status_code == 200
    assert_error(await login(client, account.email, NEW_PASSWORD), 401, "INVALID_CREDENTIALS")


async def test_unknown_reset_token_is_refused(client: httpx.AsyncClient, db: AsyncSession) -> None:
    account = await register(client)
    hash_before = await password_hash(db, account.id)

    response = await reset(client, "made-up-token", NEW_PASSWORD)

    assert_error(response, 400, "INVALID_TOKEN")
    assert await password_hash(db, account.id) == hash_before


async def test_reset_signs_out_every_session(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
    db: AsyncSession,
) -> None:
    account = await register(client)
    second = (await login(client, account.email)).json()["data"]
    token = await request_reset(client, state, smtp_server, account.email)

    assert (await reset(client, token, NEW_PASSWORD)).status_code == 200

    for access in (account.token, second["token"]):
        me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {access}"})
        assert_error(me, 401, "AUTH_REQUIRED")
    for refresh in (account.refresh_token, second["refreshToken"]):
        renewed = await client.post("/api/auth/refresh", json={"refreshToken": refresh})
        assert_error(renewed, 401, "INVALID_TOKEN")
    sessions = (
        (await db.execute(select(AuthSession).where(AuthSession.user_id == account.id)))
        .scalars()
        .all()
    )
    assert len(sessions) == 2
    assert all(s.revoked_at is not None for s in sessions)


async def test_reset_with_a_short_password_is_refused_and_the_token_still_works(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
    db: AsyncSession,
) -> None:
    account = await register(client)
    token = await request_reset(client, state, smtp_server, account.email)
    hash_before = await password_hash(db, account.id)

    response = await reset(client, token, "short")

    assert validation_fields(response) == {"newPassword"}
    assert await password_hash(db, account.id) == hash_before
    assert [t.used_at for t in await reset_tokens(db, account.id)] == [None]
    assert (await reset(client, token, NEW_PASSWORD)).status_code == 200


async def test_reset_without_a_token_is_refused(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
    db: AsyncSession,
) -> None:
    account = await register(client)
    await request_reset(client, state, smtp_server, account.email)
    hash_before = await password_hash(db, account.id)

    response = await client.post("/api/auth/reset-password", json={"newPassword": NEW_PASSWORD})

    assert validation_fields(response) == {"token"}
    assert await password_hash(db, account.id) == hash_before
    assert [t.used_at for t in await reset_tokens(db, account.id)] == [None]


async def test_reset_link_is_not_sent_for_an_account_being_deleted(
    client: httpx.AsyncClient,
    state: AppState,
    smtp_server: SmtpServer,
    db: AsyncSession,
) -> None:
    account: Account = await register(client)
    deleted = await client.post(
        "/api/auth/delete-account", json={"password": account.password}, headers=account.headers
    )
    assert deleted.status_code == 200

    response = await client.post("/api/auth/forgot-password", json={"email": account.email})

    assert response.status_code == 200
    assert response.json()["data"] == {"message": FORGOT_MESSAGE}
    await settle(state)
    assert smtp_server.received(reset_mails_to(account.email)) == []
    assert await reset_tokens(db, account.id) == []
