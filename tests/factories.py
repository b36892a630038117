"""Helpers that create data through the API, the way a client would."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
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
