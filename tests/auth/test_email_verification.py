"""E-mail verification, delivered through a real SMTP server on loopback."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.models import OneTimeToken
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.users.models import User
from tests.factories import Account, assert_error, register, validation_fields
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
VERIFY_LINK = f"{APP_URL}/verify-email"
VERIFY_SUBJECT = "Confirm your e-mail for the Beat Machine"


@pytest.fixture
def settings_overrides(smtp_server: SmtpServer) -> dict[str, Any]:
    return {"SMTP_URL": smtp_server.url, "APP_URL": APP_URL}


def verification_mails_to(email: str) -> MessageFilter:
    is_to, is_verification = to_address(email), with_subject(VERIFY_SUBJECT)
    return lambda message: is_to(message) and is_verification(message)


async def registered_with_token(
    client: httpx.AsyncClient, state: AppState, server: SmtpServer, **fields: Any
) -> tuple[Account, str]:
    """Register an account and return it with the token of its verification mail."""
    account = await register(client, **fields)
    await settle(state)
    [mail] = await server.wait_for(verification_mails_to(account.email))
    return account, link_token(mail, VERIFY_LINK)


async def verify(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/auth/verify-email", json={"token": token})


async def email_verified(client: httpx.AsyncClient, account: Account) -> bool:
    response = await client.get("/api/users/me", headers=account.headers)
    assert response.status_code == 200, response.text
    verified: bool = response.json()["data"]["emailVerified"]
    return verified


async def verified_at_in_db(db: AsyncSession, user_id: str) -> Any:
    db.expire_all()
    return (await db.execute(select(User.email_verified_at).where(User.id == user_id))).scalar_one()


async def test_register_sends_a_verification_mail(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer
) -> None:
    account = await register(client, display_name="Casino Carla")

    await settle(state)
    [mail] = await smtp_server.wait_for(verification_mails_to(account.email))
    assert mail["To"] == account.email
    assert mail["From"] == state.settings.mail_from
    assert "Casino Carla" in body_text(mail)
    assert link_token(mail, VERIFY_LINK)
    assert await email_verified(client, account) is False


async def test_verify_email_confirms_the_address(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer, db: AsyncSession
) -> None:
    account, token = await registered_with_token(client, state, smtp_server)

    response = await verify(client, token)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert set(body["data"]) == {"message"} and body["data"]["message"]
    assert await email_verified(client, account) is True
    assert await verified_at_in_db(db, account.id) is not None


async def test_verification_token_works_only_once(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer
) -> None:
    _account, token = await registered_with_token(client, state, smtp_server)
    assert (await verify(client, token)).status_code == 200

    assert_error(await verify(client, token), 400, "INVALID_TOKEN")


async def test_unknown_verification_token_is_refused(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer, db: AsyncSession
) -> None:
    account, _token = await registered_with_token(client, state, smtp_server)

    assert_error(await verify(client, "made-up-token"), 400, "INVALID_TOKEN")
    assert await verified_at_in_db(db, account.id) is None


async def test_expired_verification_token_is_refused(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer, db: AsyncSession
) -> None:
    account, token = await registered_with_token(client, state, smtp_server)
    await db.execute(
        update(OneTimeToken)
        .where(OneTimeToken.user_id == account.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()

    assert_error(await verify(client, token), 400, "INVALID_TOKEN")
    assert await verified_at_in_db(db, account.id) is None


async def test_verification_token_is_stored_only_as_a_hash(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer, db: AsyncSession
) -> None:
    account, token = await registered_with_token(client, state, smtp_server)

    rows = (
        (await db.execute(select(OneTimeToken).where(OneTimeToken.user_id == account.id)))
        .scalars()
        .all()
    )

    assert len(rows) == 1
    assert token not in rows[0].token_hash


async def test_reset_token_does_not_verify_an_email(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer, db: AsyncSession
) -> None:
    account = await register(client)
    await client.post("/api/auth/forgot-password", json={"email": account.email})
    await settle(state)
    [mail] = await smtp_server.wait_for(
        lambda m: to_address(account.email)(m) and "reset-password?" in body_text(m)
    )
    reset_token = link_token(mail, f"{APP_URL}/reset-password")

    assert_error(await verify(client, reset_token), 400, "INVALID_TOKEN")
    assert await verified_at_in_db(db, account.id) is None


async def test_verify_email_without_a_token_is_a_validation_error(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer, db: AsyncSession
) -> None:
    account, token = await registered_with_token(client, state, smtp_server)

    response = await client.post("/api/auth/verify-email", json={})

    assert validation_fields(response) == {"token"}
    assert await verified_at_in_db(db, account.id) is None
    assert (await verify(client, token)).status_code == 200


async def test_resend_verification_sends_a_new_link(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer
) -> None:
    account, first = await registered_with_token(client, state, smtp_server)

    response = await client.post("/api/auth/resend-verification", headers=account.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert set(body["data"]) == {"message"} and body["data"]["message"]
    await settle(state)
    mails = await smtp_server.wait_for(verification_mails_to(account.email), count=2)
    second = link_token(mails[-1], VERIFY_LINK)
    assert second != first
    assert (await verify(client, second)).status_code == 200
    assert await email_verified(client, account) is True


async def test_resend_verification_requires_sign_in(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer
) -> None:
    response = await client.post("/api/auth/resend-verification")

    assert_error(response, 401, "AUTH_REQUIRED")
    await settle(state)
    assert smtp_server.received() == []


async def test_resend_verification_sends_nothing_once_verified(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer
) -> None:
    account, token = await registered_with_token(client, state, smtp_server)
    assert (await verify(client, token)).status_code == 200

    response = await client.post("/api/auth/resend-verification", headers=account.headers)

    assert response.status_code == 200
    await settle(state)
    assert len(smtp_server.received(verification_mails_to(account.email))) == 1


async def test_failed_registration_sends_no_mail(
    client: httpx.AsyncClient, state: AppState, smtp_server: SmtpServer, db: AsyncSession
) -> None:
    account, _token = await registered_with_token(client, state, smtp_server)

    response = await client.post(
        "/api/auth/register",
        json={
            "email": account.email,
            "password": "another password",
            "displayName": "Copycat",
            "acceptTerms": True,
        },
    )

    assert_error(response, 409, "USER_EXISTS")
    await settle(state)
    assert len(smtp_server.received(to_address(account.email))) == 1
    tokens = (await db.execute(select(OneTimeToken))).scalars().all()
    assert [t.user_id for t in tokens] == [account.id]
