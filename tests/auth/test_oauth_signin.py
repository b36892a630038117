"""OAuth sign-in end to end: POST /api/auth/oauth/{google,apple,facebook} against a real
loopback identity provider, and what the sign-ins store."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.auth.models import OAuthAccount
from beatmachine.core.ids import utcnow
from beatmachine.users.models import User
from tests import idp as loopback
from tests.factories import assert_error, login, register, validation_fields
from tests.idp import IdentityProvider, free_port_url, new_rsa_key

GOOGLE = "/api/auth/oauth/google"
APPLE = "/api/auth/oauth/apple"
FACEBOOK = "/api/auth/oauth/facebook"
# The loopback provider, a fresh one per test (the fixture lives in tests/idp.py).
identity_provider = loopback.identity_provider

USER_ID = re.compile(r"^usr_[0-9a-z]{16}$")
GOOGLE_SUB = "110169484474386276334"


@pytest.fixture
def settings_overrides(
    request: pytest.FixtureRequest, identity_provider: IdentityProvider
) -> dict[str, Any]:
    """Point every provider at the loopback one; a test may add overrides through
    `@pytest.mark.parametrize("settings_overrides", [{...}], indirect=True)`."""
    return {**identity_provider.settings_env(), **getattr(request, "param", {})}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def google_sign_in(
    client: httpx.AsyncClient, idp: IdentityProvider, **claims: Any
) -> httpx.Response:
    return await client.post(GOOGLE, json={"idToken": idp.sign(idp.google_claims(**claims))})


async def row_counts(db: AsyncSession) -> tuple[int, int]:
    """(users, oauth_accounts) as committed now."""
    await db.rollback()
    users = (await db.execute(select(func.count()).select_from(User))).scalar_one()
    links = (await db.execute(select(func.count()).select_from(OAuthAccount))).scalar_one()
    return int(users), int(links)


async def links_of(db: AsyncSession, user_id: str) -> list[tuple[str, str]]:
    await db.rollback()
    result = await db.execute(
        select(OAuthAccount.provider, OAuthAccount.provider_user_id).where(
            OAuthAccount.user_id == user_id
        )
    )
    return [(provider, subject) for provider, subject in result.all()]


async def stored_user(db: AsyncSession, user_id: str) -> User:
    await db.rollback()
    db.expire_all()
    return (await db.execute(select(User).where(User.id == user_id))).unique().scalar_one()


async def mark_email_verified(db: AsyncSession, user_id: str) -> None:
    await db.execute(update(User).where(User.id == user_id).values(email_verified_at=utcnow()))
    await db.commit()


# --- Google: the happy path ---------------------------------------------------------------


async def test_google_sign_in_creates_an_account_and_returns_tokens(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    response = await google_sign_in(client, identity_provider)

    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["success"] is True
    data = payload["data"]
    assert set(data) == {"user", "token", "refreshToken", "tokenType", "expiresIn", "isNewUser"}
    assert set(data["user"]) == {"id", "email", "displayName"}
    assert USER_ID.match(data["user"]["id"])
    assert data["user"]["email"] == "dancer@example.com"
    assert data["user"]["displayName"] == "Salsa Dancer"
    assert isinstance(data["token"], str) and data["token"].count(".") == 2
    assert isinstance(data["refreshToken"], str) and data["refreshToken"]
    assert data["tokenType"] == "Bearer"
    assert data["expiresIn"] == 900
    assert data["isNewUser"] is True
    assert await links_of(db, data["user"]["id"]) == [("google", GOOGLE_SUB)]
    user = await stored_user(db, data["user"]["id"])
    assert user.password_hash is None


async def test_google_sign_in_token_works_on_users_me(
    client: httpx.AsyncClient, identity_provider: IdentityProvider
) -> None:
    data = (await google_sign_in(client, identity_provider)).json()["data"]

    me = await client.get("/api/users/me", headers=bearer(data["token"]))

    assert me.status_code == 200, me.text
    profile = me.json()["data"]
    assert profile["id"] == data["user"]["id"]
    assert profile["email"] == "dancer@example.com"
    assert profile["displayName"] == "Salsa Dancer"
    assert profile["emailVerified"] is True


async def test_google_sign_in_refresh_token_renews_the_session(
    client: httpx.AsyncClient, identity_provider: IdentityProvider
) -> None:
    data = (await google_sign_in(client, identity_provider)).json()["data"]

    renewed = await client.post("/api/auth/refresh", json={"refreshToken": data["refreshToken"]})

    assert renewed.status_code == 200, renewed.text
    me = await client.get("/api/users/me", headers=bearer(renewed.json()["data"]["token"]))
    assert me.json()["data"]["id"] == data["user"]["id"]


async def test_same_google_identity_signs_in_to_the_same_account(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    first = (await google_sign_in(client, identity_provider)).json()["data"]

    # Same subject; the e-mail and name at Google may have changed meanwhile.
    again = await google_sign_in(
        client, identity_provider, email="renamed@example.com", name="Renamed"
    )

    assert again.status_code == 200, again.text
    data = again.json()["data"]
    assert data["user"]["id"] == first["user"]["id"]
    assert data["user"]["email"] == "dancer@example.com"
    assert data["isNewUser"] is False
    assert data["token"] != first["token"]
    assert await row_counts(db) == (1, 1)


async def test_google_sign_in_without_a_name_uses_the_email_local_part(
    client: httpx.AsyncClient, identity_provider: IdentityProvider
) -> None:
    response = await google_sign_in(client, identity_provider, name=None)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["user"]["displayName"] == "dancer"


# --- Google: tokens that must not sign anyone in --------------------------------------------


def _wrong_audience(idp: IdentityProvider) -> str:
    return idp.sign(idp.google_claims(aud="someone-else.apps.googleusercontent.com"))


def _wrong_issuer(idp: IdentityProvider) -> str:
    return idp.sign(idp.google_claims(iss="https://evil.example.com"))


def _expired(idp: IdentityProvider) -> str:
    now = int(time.time())
    return idp.sign(idp.google_claims(iat=now - 7200, exp=now - 3600))


def _unknown_key_id(idp: IdentityProvider) -> str:
    return idp.sign(idp.google_claims(), kid="a-key-nobody-published")


def _bad_signature(idp: IdentityProvider) -> str:
    # Signed by a key of the attacker's, under the kid of the provider's real key.
    return idp.sign(idp.google_claims(), key=new_rsa_key(), kid=idp.kid)


@pytest.mark.parametrize(
    "make_token",
    [_wrong_audience, _wrong_issuer, _expired, _unknown_key_id, _bad_signature],
    ids=["wrong-audience", "wrong-issuer", "expired", "unknown-key-id", "bad-signature"],
)
async def test_unverifiable_google_token_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    identity_provider: IdentityProvider,
    db: AsyncSession,
    make_token: Callable[[IdentityProvider], str],
) -> None:
    response = await client.post(GOOGLE, json={"idToken": make_token(identity_provider)})

    assert_error(response, 401, "INVALID_TOKEN")
    assert await row_counts(db) == (0, 0)


async def test_google_token_that_is_not_a_jwt_is_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await client.post(GOOGLE, json={"idToken": "not-a-jwt"})

    assert_error(response, 401, "INVALID_TOKEN")
    assert await row_counts(db) == (0, 0)


# --- linking to an existing account by e-mail ------------------------------------------------


async def test_verified_google_email_links_to_the_existing_account(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    account = await register(client, email="dancer@example.com")
    await mark_email_verified(db, account.id)

    response = await google_sign_in(client, identity_provider, email="Dancer@Example.com")

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["user"]["id"] == account.id
    assert data["isNewUser"] is False
    assert await links_of(db, account.id) == [("google", GOOGLE_SUB)]
    assert await row_counts(db) == (1, 1)
    password_login = await login(client, account.email, account.password)
    assert password_login.status_code == 200, password_login.text
    assert password_login.json()["data"]["user"]["id"] == account.id
    old_token = await client.get("/api/users/me", headers=account.headers)
    assert old_token.status_code == 200, old_token.text


async def test_verified_google_email_takes_over_an_unconfirmed_account(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    # Someone registered the address without ever proving they own it: the Google user
    # who does own it gets the account, and the squatter's password and sessions end.
    squatter = await register(client, email="dancer@example.com")

    response = await google_sign_in(client, identity_provider)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["user"]["id"] == squatter.id
    assert data["isNewUser"] is False
    assert_error(await login(client, squatter.email, squatter.password), 401, "INVALID_CREDENTIALS")
    assert_error(await client.get("/api/users/me", headers=squatter.headers), 401, "AUTH_REQUIRED")
    me = await client.get("/api/users/me", headers=bearer(data["token"]))
    assert me.json()["data"]["emailVerified"] is True
    assert (await stored_user(db, squatter.id)).password_hash is None


async def test_verified_email_takes_over_an_account_an_unverified_identity_created(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    squatter = await google_sign_in(client, identity_provider, email_verified=False)
    assert squatter.json()["data"]["isNewUser"] is True
    owner_token = identity_provider.new_facebook_token("42", email="dancer@example.com")

    owner = await client.post(FACEBOOK, json={"accessToken": owner_token})

    assert owner.status_code == 200, owner.text
    user_id = owner.json()["data"]["user"]["id"]
    assert user_id == squatter.json()["data"]["user"]["id"]
    assert await links_of(db, user_id) == [("facebook", "42")]
    assert_error(
        await client.get("/api/users/me", headers=bearer(squatter.json()["data"]["token"])),
        401,
        "AUTH_REQUIRED",
    )
    again = await google_sign_in(client, identity_provider, email_verified=False)
    assert_error(again, 422, "VALIDATION_ERROR")


async def test_unverified_google_email_matching_an_account_is_refused_and_not_linked(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    account = await register(client, email="dancer@example.com")
    await mark_email_verified(db, account.id)

    response = await google_sign_in(client, identity_provider, email_verified=False)

    assert_error(response, 422, "VALIDATION_ERROR")
    assert await links_of(db, account.id) == []
    assert await row_counts(db) == (1, 0)
    assert (await login(client, account.email, account.password)).status_code == 200


async def test_google_sign_in_without_an_email_is_refused(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    response = await google_sign_in(client, identity_provider, email=None, email_verified=None)

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [field["field"] for field in error["details"]["fields"]] == ["email"]
    assert await row_counts(db) == (0, 0)


# --- Apple and Facebook ----------------------------------------------------------------------


async def test_apple_sign_in_creates_an_account(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    token = identity_provider.sign(identity_provider.apple_claims())

    response = await client.post(APPLE, json={"idToken": token})

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["isNewUser"] is True
    assert data["user"]["email"] == "hidden@privaterelay.appleid.com"
    assert data["user"]["displayName"] == "hidden"
    assert await links_of(db, data["user"]["id"]) == [("apple", "001234.abcdef0123456789.0042")]
    me = await client.get("/api/users/me", headers=bearer(data["token"]))
    assert me.json()["data"]["emailVerified"] is True


async def test_google_id_token_is_refused_at_the_apple_endpoint(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    token = identity_provider.sign(identity_provider.google_claims())

    response = await client.post(APPLE, json={"idToken": token})

    assert_error(response, 401, "INVALID_TOKEN")
    assert await row_counts(db) == (0, 0)


async def test_facebook_sign_in_creates_an_account(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    token = identity_provider.new_facebook_token(
        "10158000000000001", email="Fb.Dancer@Example.com", name="Facebook Dancer"
    )

    response = await client.post(FACEBOOK, json={"accessToken": token})

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["isNewUser"] is True
    assert data["user"]["email"] == "fb.dancer@example.com"
    assert data["user"]["displayName"] == "Facebook Dancer"
    assert await links_of(db, data["user"]["id"]) == [("facebook", "10158000000000001")]


async def test_facebook_token_of_another_app_is_refused(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    token = identity_provider.new_facebook_token(email="fb@example.com", app_id="999888777")

    response = await client.post(FACEBOOK, json={"accessToken": token})

    assert_error(response, 401, "INVALID_TOKEN")
    assert await row_counts(db) == (0, 0)


async def test_unknown_facebook_token_is_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await client.post(FACEBOOK, json={"accessToken": "EAAGnobodyissuedthis"})

    assert_error(response, 401, "INVALID_TOKEN")
    assert await row_counts(db) == (0, 0)


async def test_identities_of_two_providers_with_one_verified_email_share_the_account(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    google = (await google_sign_in(client, identity_provider)).json()["data"]
    token = identity_provider.new_facebook_token("42", email="dancer@example.com", name="X")

    response = await client.post(FACEBOOK, json={"accessToken": token})

    assert response.status_code == 200, response.text
    assert response.json()["data"]["user"]["id"] == google["user"]["id"]
    assert sorted(await links_of(db, google["user"]["id"])) == [
        ("facebook", "42"),
        ("google", GOOGLE_SUB),
    ]


# --- configuration and outages ---------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"GOOGLE_CLIENT_ID": ""}], indirect=True)
async def test_disabled_provider_is_not_found(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    response = await google_sign_in(client, identity_provider)

    assert_error(response, 404, "OAUTH_PROVIDER_DISABLED")
    assert identity_provider.requests == []
    assert await row_counts(db) == (0, 0)


@pytest.mark.parametrize("settings_overrides", [{"FACEBOOK_APP_ID": ""}], indirect=True)
async def test_disabled_facebook_is_not_found(
    client: httpx.AsyncClient, identity_provider: IdentityProvider
) -> None:
    token = identity_provider.new_facebook_token(email="fb@example.com")

    response = await client.post(FACEBOOK, json={"accessToken": token})

    assert_error(response, 404, "OAUTH_PROVIDER_DISABLED")
    assert identity_provider.requests == []


async def test_google_outage_is_503_and_stores_nothing(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    identity_provider.fail_status = 503

    response = await google_sign_in(client, identity_provider)

    assert_error(response, 503, "OAUTH_PROVIDER_UNAVAILABLE")
    assert identity_provider.requests == ["/jwks"]
    assert await row_counts(db) == (0, 0)


@pytest.mark.parametrize(
    "settings_overrides", [{"GOOGLE_JWKS_URL": free_port_url() + "/jwks"}], indirect=True
)
async def test_unreachable_google_keys_are_503(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    response = await google_sign_in(client, identity_provider)

    assert_error(response, 503, "OAUTH_PROVIDER_UNAVAILABLE")
    assert await row_counts(db) == (0, 0)


async def test_facebook_outage_is_503_and_stores_nothing(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    token = identity_provider.new_facebook_token(email="fb@example.com")
    identity_provider.fail_status = 503

    response = await client.post(FACEBOOK, json={"accessToken": token})

    assert_error(response, 503, "OAUTH_PROVIDER_UNAVAILABLE")
    assert await row_counts(db) == (0, 0)


async def test_sign_in_works_again_once_the_provider_is_back(
    client: httpx.AsyncClient, identity_provider: IdentityProvider
) -> None:
    identity_provider.fail_status = 503
    assert (await google_sign_in(client, identity_provider)).status_code == 503

    identity_provider.fail_status = None
    response = await google_sign_in(client, identity_provider)

    assert response.status_code == 200, response.text


# --- request validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (GOOGLE, {}, "idToken"),
        (GOOGLE, {"idToken": ""}, "idToken"),
        (GOOGLE, {"id_token": "x"}, "idToken"),
        (APPLE, {}, "idToken"),
        (FACEBOOK, {}, "accessToken"),
        (FACEBOOK, {"accessToken": 12345}, "accessToken"),
    ],
    ids=[
        "google-missing",
        "google-empty",
        "google-snake-case",
        "apple-missing",
        "facebook-missing",
        "facebook-number",
    ],
)
async def test_sign_in_without_a_token_is_a_validation_error(
    client: httpx.AsyncClient,
    identity_provider: IdentityProvider,
    db: AsyncSession,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = await client.post(path, json=body)

    assert field in validation_fields(response)
    assert identity_provider.requests == []
    assert await row_counts(db) == (0, 0)


# --- concurrency and account deletion --------------------------------------------------------


async def test_concurrent_first_sign_ins_of_one_identity_make_one_account(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    token = identity_provider.sign(identity_provider.google_claims())

    responses = await asyncio.gather(
        client.post(GOOGLE, json={"idToken": token}),
        client.post(GOOGLE, json={"idToken": token}),
    )

    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    datas = [r.json()["data"] for r in responses]
    assert datas[0]["user"]["id"] == datas[1]["user"]["id"]
    assert sorted(d["isNewUser"] for d in datas) == [False, True]
    assert await row_counts(db) == (1, 1)


async def test_oauth_sign_in_during_the_deletion_grace_period_cancels_the_deletion(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    account = await register(client, email="dancer@example.com")
    await mark_email_verified(db, account.id)
    assert (await google_sign_in(client, identity_provider)).status_code == 200
    deleting = await client.post(
        "/api/auth/delete-account", json={"password": account.password}, headers=account.headers
    )
    assert deleting.status_code == 200, deleting.text
    assert (await stored_user(db, account.id)).deletion_scheduled_at is not None

    response = await google_sign_in(client, identity_provider)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["user"]["id"] == account.id
    assert data["isNewUser"] is False
    assert (await stored_user(db, account.id)).deletion_scheduled_at is None
    me = await client.get("/api/users/me", headers=bearer(data["token"]))
    assert me.status_code == 200, me.text
    assert me.json()["data"]["deletionScheduledAt"] is None


async def test_oauth_only_account_can_be_deleted_and_kept_by_signing_in_again(
    client: httpx.AsyncClient, identity_provider: IdentityProvider, db: AsyncSession
) -> None:
    first = (await google_sign_in(client, identity_provider)).json()["data"]
    deleting = await client.post(
        "/api/auth/delete-account", json={}, headers=bearer(first["token"])
    )
    assert deleting.status_code == 200, deleting.text

    response = await google_sign_in(client, identity_provider)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["user"]["id"] == first["user"]["id"]
    assert (await stored_user(db, first["user"]["id"])).deletion_scheduled_at is None
    assert await row_counts(db) == (1, 1)
