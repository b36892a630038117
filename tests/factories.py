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

_counter = itertools.count(1)

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    password: str
    token: str
    refresh_token: str

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


def _verification_tokens(outbox: Path, address: str) -> list[str]:
    tokens = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address and isinstance(message, email.message.EmailMessage):
            match = re.search(r"verify-email\?token=([A-Za-z0-9_-]+)", message.get_content())
            if match:
                tokens.append(match.group(1))
    return tokens


async def confirm_email(client: httpx.AsyncClient, account: Account) -> None:
    """Follow the verification link the app mailed to the account (outbox set-up)."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    state = transport.app.state.services  # type: ignore[attr-defined]
    await state.mailer.drain()
    tokens = _verification_tokens(state.settings.effective_outbox_dir, account.email)
    assert tokens, f"no verification mail for {account.email}"
    response = await client.post("/api/auth/verify-email", json={"token": tokens[-1]})
    assert response.status_code == 200, response.text
