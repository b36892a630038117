"""Password hashing waits for a slot (one per core). A request waiting for one must not
hold a database connection (PostgreSQL: one pool of a few connections; SQLite: the write
lock), or a burst of sign-ins would stall every other request."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import bcrypt
import httpx
import pytest
from sqlalchemy import Executable, delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.state import AppState
from beatmachine.users.models import User
from tests.factories import (
    PASSWORD,
    Account,
    assert_error,
    login,
    register,
    reset_token,
    unique_email,
)

# Long enough for a loaded machine, far shorter than a pool or lock timeout (30 s).
OTHER_REQUEST_SECONDS = 5.0


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # One connection: a request that holds it while waiting blocks every other one.
    return {"DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0}


class HeldSlots:
    """Every hashing slot busy inside the block, as in a burst of sign-ins."""

    def __init__(self, state: AppState) -> None:
        self._limiter = state.passwords.slots
        self._borrowers = [object() for _ in range(int(self._limiter.total_tokens))]

    async def __aenter__(self) -> HeldSlots:
        for borrower in self._borrowers:
            await self._limiter.acquire_on_behalf_of(borrower)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def release(self) -> None:
        held = self._limiter.statistics().borrowers
        for borrower in self._borrowers:
            if borrower in held:
                self._limiter.release_on_behalf_of(borrower)


async def waiting_for_a_slot(state: AppState, count: int = 1) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + OTHER_REQUEST_SECONDS
    while state.passwords.slots.statistics().tasks_waiting < count:
        if loop.time() > deadline:
            pytest.fail("the request never waited for a hashing slot")
        await asyncio.sleep(0.01)


async def served_beside(
    client: httpx.AsyncClient,
    state: AppState,
    account: Account,
    request: Coroutine[Any, Any, httpx.Response],
) -> httpx.Response:
    """Send `request` while every hashing slot is busy, check that another request that
    needs the database is answered meanwhile, then free the slots; `request`'s answer."""
    async with HeldSlots(state) as slots:
        pending = asyncio.create_task(request)
        await waiting_for_a_slot(state)

        other = await asyncio.wait_for(
            client.get("/api/users/me", headers=account.headers), OTHER_REQUEST_SECONDS
        )

        assert other.status_code == 200, other.text
        slots.release()
        return await pending


async def login_with_change_meanwhile(
    client: httpx.AsyncClient,
    state: AppState,
    db: AsyncSession,
    account: Account,
    change: Executable,
) -> httpx.Response:
    """Sign in, and apply `change` while the password is waiting to be checked."""
    async with HeldSlots(state) as slots:
        pending = asyncio.create_task(login(client, account.email))
        await waiting_for_a_slot(state)
        await db.execute(change)
        await db.commit()
        slots.release()
        return await pending


async def test_login_waiting_for_a_hashing_slot_leaves_the_database_to_others(
    client: httpx.AsyncClient, state: AppState
) -> None:
    account = await register(client)
    response = await served_beside(client, state, account, login(client, account.email))

    assert response.status_code == 200, response.text


async def test_registration_waiting_for_a_hashing_slot_leaves_the_database_to_others(
    client: httpx.AsyncClient, state: AppState
) -> None:
    account = await register(client)
    response = await served_beside(
        client,
        state,
        account,
        client.post(
            "/api/auth/register",
            json={
                "email": unique_email(),
                "password": PASSWORD,
                "displayName": "Second",
                "acceptTerms": True,
            },
        ),
    )

    assert response.status_code == 201, response.text


async def test_password_reset_waiting_for_a_hashing_slot_leaves_the_database_to_others(
    client: httpx.AsyncClient, state: AppState
) -> None:
    account = await register(client)
    raw = await reset_token(client, account)
    response = await served_beside(
        client,
        state,
        account,
        client.post("/api/auth/reset-password", json={"token": raw, "newPassword": "a new secret"}),
    )

    assert response.status_code == 200, response.text
    assert (await login(client, account.email, "a new secret")).status_code == 200


async def test_password_changed_while_login_was_checking_refuses_the_login(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    account = await register(client)
    # A password reset lands in between: the checked hash is no longer the account's.
    response = await login_with_change_meanwhile(
        client,
        state,
        db,
        account,
        update(User).where(User.id == account.id).values(password_hash="$argon2id$changed"),
    )

    assert_error(response, 401, "INVALID_CREDENTIALS")


async def test_account_removed_while_login_was_checking_refuses_the_login(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    account = await register(client)
    response = await login_with_change_meanwhile(
        client, state, db, account, delete(User).where(User.id == account.id)
    )

    assert_error(response, 401, "INVALID_CREDENTIALS")


async def test_two_sign_ins_upgrading_the_same_old_hash_both_succeed(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    account = await register(client)
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    await db.execute(update(User).where(User.id == account.id).values(password_hash=legacy))
    await db.commit()
    async with HeldSlots(state) as slots:
        first = asyncio.create_task(login(client, account.email))
        second = asyncio.create_task(login(client, account.email))
        await waiting_for_a_slot(state, count=2)
        slots.release()
        responses = await asyncio.gather(first, second)

    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
