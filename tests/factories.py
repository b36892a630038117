"""Helpers that create data through the API, the way a client would."""

from __future__ import annotations

import email
import email.message
import email.policy
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.jobs import settle

_counter = itertools.count(1)

PASSWORD = "correct horse battery"
ADMIN_EMAIL = "admin@example.com"
# Settings that make `register_admin`'s account an administrator.
ADMIN_OVERRIDES: dict[str, Any] = {"ADMIN_EMAILS": ADMIN_EMAIL}


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    password: str
    token: str
    refresh_token: str
    display_name: str = "Dancer"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def unique_email(stem: str = "dancer") -> str:
    return f"{stem}{next(_counter)}@example.com"


async def register(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    display_name: str = "Dancer",
    **extra: Any,
) -> Account:
    email = email or unique_email()
    response = await client.post(
        "/api/auth/register",
        json={
            "email": email,
            "password": password,
            "displayName": display_name,
            "acceptTerms": True,
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return Account(
        id=data["user"]["id"],
        email=email.lower(),
        password=password,
        token=data["token"],
        refresh_token=data["refreshToken"],
        display_name=display_name,
    )


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def validation_fields(response: httpx.Response) -> set[str]:
    error = assert_error(response, 422, "VALIDATION_ERROR")
    return {item["field"] for item in error["details"]["fields"]}


def _mailed_tokens(outbox: Path, address: str, link_path: str) -> list[str]:
    """The tokens of the `link_path` links mailed to `address`, oldest first."""
    tokens = []
    pattern = re.escape(link_path) + r"\?token=([A-Za-z0-9_-]+)"
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address and isinstance(message, email.message.EmailMessage):
            match = re.search(pattern, message.get_content())
            if match:
                tokens.append(match.group(1))
    return tokens


def _app_state(client: httpx.AsyncClient) -> Any:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return transport.app.state.services  # type: ignore[attr-defined]


async def reset_token(client: httpx.AsyncClient, account: Account) -> str:
    """Ask for a password reset and return the token the app mailed (outbox set-up)."""
    response = await client.post("/api/auth/forgot-password", json={"email": account.email})
    assert response.status_code == 200, response.text
    state = _app_state(client)
    await settle(state)
    tokens = _mailed_tokens(state.settings.effective_outbox_dir, account.email, "reset-password")
    assert tokens, f"no reset mail for {account.email}"
    return tokens[-1]


async def confirm_email(client: httpx.AsyncClient, account: Account) -> None:
    """Follow the verification link the app mailed to the account (outbox set-up)."""
    state = _app_state(client)
    await settle(state)
    tokens = _mailed_tokens(state.settings.effective_outbox_dir, account.email, "verify-email")
    assert tokens, f"no verification mail for {account.email}"
    response = await client.post("/api/auth/verify-email", json={"token": tokens[-1]})
    assert response.status_code == 200, response.text


async def register_admin(client: httpx.AsyncClient) -> Account:
    """An account listed in ADMIN_EMAILS (use with ADMIN_OVERRIDES), its email confirmed."""
    account = await register(client, email=ADMIN_EMAIL, display_name="Admin")
    await confirm_email(client, account)
    return account
