"""Account deletion: scheduling with a grace period, cancelling by signing in, the purge job."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.models import AuthSession, OneTimeToken, RefreshToken
from beatmachine.auth.service import purge_deleted_accounts
from beatmachine.core.ids import utcnow
from beatmachine.core.state import AppState
from beatmachine.users.models import User, UserPreferences
from tests.factories import Account, assert_error, login, register

GRACE = timedelta(days=30)


async def delete_account(
    client: httpx.AsyncClient, account: Account, password: str | None
) -> httpx.Response:
    body = {} if password is None else {"password": password}
    return await client.post("/api/auth/delete-account", json=body, headers=account.headers)


async def scheduled_at(db: AsyncSession, user_id: str) -> datetime | None:
    db.expire_all()
    return (
        await db.execute(select(User.deletion_scheduled_at).where(User.id == user_id))
    ).scalar_one()


def parse_timestamp(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def rows_of(db: AsyncSession, user_id: str) -> dict[str, int]:
    """How many rows of each table belong to the user."""
    db.expire_all()
    session_ids = select(AuthSession.id).where(AuthSession.user_id == user_id)
    counts = {
        "users": select(func.count()).select_from(User).where(User.id == user_id),
        "user_preferences": select(func.count())
        .select_from(UserPreferences)
        .where(UserPreferences.user_id == user_id),
        "sessions": select(func.count())
        .select_from(AuthSession)
        .where(AuthSession.user_id == user_id),
        "refresh_tokens": select(func.count())
        .select_from(RefreshToken)
        .where(RefreshToken.session_id.in_(session_ids)),
        "one_time_tokens": select(func.count())
        .select_from(OneTimeToken)
        .where(OneTimeToken.user_id == user_id),
    }
    return {table: (await db.execute(query)).scalar_one() for table, query in counts.items()}


async def move_deletion_into_the_past(db: AsyncSession, user_id: str) -> None:
    await db.execute(
        update(User)
        .where(User.id == user_id)
        .values(deletion_scheduled_at=utcnow() - timedelta(minutes=1))
    )
    await db.commit()


async def test_delete_account_schedules_deletion_after_the_grace_period(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    before = utcnow()

    response = await delete_account(client, account, account.password)

    after = utcnow()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert set(body["data"]) == {"message", "deletionScheduledAt"}
    assert body["data"]["message"]
    when = parse_timestamp(body["data"]["deletionScheduledAt"])
    assert before + GRACE - timedelta(seconds=1) <= when <= after + GRACE + timedelta(seconds=1)
    stored = await scheduled_at(db, account.id)
    assert stored is not None
    assert abs(stored - when) < timedelta(seconds=1)


async def test_delete_account_from_a_session_idle_for_a_while_succeeds(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    # Long enough ago that signing the request in records the session's new last use.
    await db.execute(
        update(AuthSession)
        .where(AuthSession.user_id == account.id)
        .values(last_used_at=utcnow() - timedelta(minutes=10))
    )
    await db.commit()

    response = await delete_account(client, account, account.password)

    assert response.status_code == 200, response.text
    assert await scheduled_at(db, account.id) is not None


async def test_deleted_account_token_no_longer_works(client: httpx.AsyncClient) -> None:
    account = await register(client)
    assert (await delete_account(client, account, account.password)).status_code == 200

    response = await client.get("/api/users/me", headers=account.headers)

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_delete_account_ends_every_session(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    other = (await login(client, account.email, account.password)).json()["data"]
    assert (await delete_account(client, account, account.password)).status_code == 200

    other_me = await client.get(
        "/api/users/me", headers={"Authorization": f"Bearer {other['token']}"}
    )
    assert_error(other_me, 401, "AUTH_REQUIRED")
    for refresh in (account.refresh_token, other["refreshToken"]):
        renewed = await client.post("/api/auth/refresh", json={"refreshToken": refresh})
        assert_error(renewed, 401, "INVALID_TOKEN")
    sessions = (
        (await db.execute(select(AuthSession).where(AuthSession.user_id == account.id)))
        .scalars()
        .all()
    )
    assert len(sessions) == 2
    assert all(s.revoked_at is not None for s in sessions)


async def test_profile_of_an_account_being_deleted_is_not_found(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    viewer = await register(client)
    assert (await delete_account(client, account, account.password)).status_code == 200

    anonymous = await client.get(f"/api/users/{account.id}")
    signed_in = await client.get(f"/api/users/{account.id}", headers=viewer.headers)

    assert_error(anonymous, 404, "USER_NOT_FOUND")
    assert_error(signed_in, 404, "USER_NOT_FOUND")


async def test_delete_account_with_a_wrong_password_is_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)

    response = await delete_account(client, account, "not my password")

    assert_error(response, 401, "INVALID_CREDENTIALS")
    assert await scheduled_at(db, account.id) is None
    me = await client.get("/api/users/me", headers=account.headers)
    assert me.status_code == 200
    assert me.json()["data"]["deletionScheduledAt"] is None


async def test_wrong_deletion_passwords_are_throttled_like_sign_ins(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    account = await register(client)
    for _ in range(state.settings.login_fail_limit_account):
        assert_error(
            await delete_account(client, account, "not my password"), 401, "INVALID_CREDENTIALS"
        )

    refused = await delete_account(client, account, account.password)

    error = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert error["message"] == "Too many failed password attempts; try again later."
    assert int(refused.headers["retry-after"]) >= 1
    assert await scheduled_at(db, account.id) is None


async def test_wrong_deletion_passwords_count_towards_the_sign_in_limit(
    client: httpx.AsyncClient, state: AppState
) -> None:
    account = await register(client)
    for _ in range(state.settings.login_fail_limit_account):
        await delete_account(client, account, "not my password")

    assert_error(await login(client, account.email), 429, "RATE_LIMIT_EXCEEDED")


async def test_the_right_deletion_password_clears_the_account_failures(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    account = await register(client)
    for _ in range(state.settings.login_fail_limit_account - 1):
        await delete_account(client, account, "not my password")

    response = await delete_account(client, account, account.password)

    assert response.status_code == 200
    assert await scheduled_at(db, account.id) is not None
    failures = await state.limiter.peek(
        "login-fail-account",
        account.email,
        limit=state.settings.login_fail_limit_account,
        window=state.settings.login_fail_window,
    )
    assert failures.remaining == state.settings.login_fail_limit_account


async def test_delete_account_without_the_password_is_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)

    response = await delete_account(client, account, None)

    assert_error(response, 401, "INVALID_CREDENTIALS")
    assert await scheduled_at(db, account.id) is None
    assert (await client.get("/api/users/me", headers=account.headers)).status_code == 200


async def test_delete_account_requires_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/delete-account", json={"password": "whatever1"})

    assert_error(response, 401, "AUTH_REQUIRED")


async def test_signing_in_during_the_grace_period_cancels_the_deletion(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await register(client)
    assert (await delete_account(client, account, account.password)).status_code == 200

    signed_in = await login(client, account.email, account.password)

    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["data"]["token"]
    me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["data"]["deletionScheduledAt"] is None
    assert await scheduled_at(db, account.id) is None
    assert (await client.get(f"/api/users/{account.id}")).status_code == 200


async def test_me_shows_no_deletion_for_an_active_account(client: httpx.AsyncClient) -> None:
    account = await register(client)

    me = await client.get("/api/users/me", headers=account.headers)

    assert me.status_code == 200
    assert me.json()["data"]["deletionScheduledAt"] is None


async def test_purge_removes_accounts_past_their_grace_period_with_their_data(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    account = await register(client)
    await login(client, account.email, account.password)
    assert (await delete_account(client, account, account.password)).status_code == 200
    await move_deletion_into_the_past(db, account.id)
    before = await rows_of(db, account.id)
    assert before == {
        "users": 1,
        "user_preferences": 1,
        "sessions": 2,
        "refresh_tokens": 2,
        "one_time_tokens": 1,
    }

    purged = await purge_deleted_accounts(state)

    assert purged == 1
    assert await rows_of(db, account.id) == dict.fromkeys(before, 0)
    assert_error(await login(client, account.email, account.password), 401, "INVALID_CREDENTIALS")


async def test_purge_leaves_accounts_in_their_grace_period_and_active_ones(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    leaving = await register(client)
    staying = await register(client)
    expired = await register(client)
    assert (await delete_account(client, leaving, leaving.password)).status_code == 200
    assert (await delete_account(client, expired, expired.password)).status_code == 200
    await move_deletion_into_the_past(db, expired.id)
    leaving_rows = await rows_of(db, leaving.id)
    staying_rows = await rows_of(db, staying.id)
    leaving_scheduled = await scheduled_at(db, leaving.id)

    purged = await purge_deleted_accounts(state)

    assert purged == 1
    assert (await rows_of(db, expired.id))["users"] == 0
    assert await rows_of(db, leaving.id) == leaving_rows
    assert await rows_of(db, staying.id) == staying_rows
    assert await scheduled_at(db, leaving.id) == leaving_scheduled
    assert (await client.get("/api/users/me", headers=staying.headers)).status_code == 200


async def test_purge_with_nothing_due_removes_nothing(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    account = await register(client)
    before = await rows_of(db, account.id)

    assert await purge_deleted_accounts(state) == 0
    assert await rows_of(db, account.id) == before


async def test_email_of_a_purged_account_can_register_again(
    client: httpx.AsyncClient, state: AppState, db: AsyncSession
) -> None:
    account = await register(client)
    assert (await delete_account(client, account, account.password)).status_code == 200
    await move_deletion_into_the_past(db, account.id)
    assert await purge_deleted_accounts(state) == 1

    again = await register(client, email=account.email)

    assert again.id != account.id
