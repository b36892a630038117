"""OAuth sign-in token verification against a real loopback identity provider."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from beatmachine.auth import oauth
from beatmachine.auth.exceptions import (
    InvalidOAuthToken,
    OAuthProviderDisabled,
    OAuthProviderUnavailable,
)
from beatmachine.auth.oauth import OAuthVerifier, ProviderIdentity
from beatmachine.core.config import Settings
from tests.idp import (
    APPLE_CLIENT_ID,
    APPLE_ISSUER,
    FACEBOOK_APP_ID,
    FACEBOOK_APP_SECRET,
    GOOGLE_CLIENT_ID,
    GOOGLE_ISSUER,
    IdentityProvider,
    free_port_url,
    identity_provider,  # noqa: F401  (fixture)
    new_ec_key,
    new_rsa_key,
)

MakeVerifier = Callable[..., OAuthVerifier]


def settings_for(idp_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "VAR_DIR": tmp_path,
        "GOOGLE_CLIENT_ID": GOOGLE_CLIENT_ID,
        "GOOGLE_JWKS_URL": idp_url + "/jwks",
        "GOOGLE_ISSUERS": GOOGLE_ISSUER,
        "APPLE_CLIENT_ID": APPLE_CLIENT_ID,
        "APPLE_JWKS_URL": idp_url + "/jwks",
        "APPLE_ISSUER": APPLE_ISSUER,
        "FACEBOOK_APP_ID": FACEBOOK_APP_ID,
        "FACEBOOK_APP_SECRET": FACEBOOK_APP_SECRET,
        "FACEBOOK_GRAPH_URL": idp_url,
        "OAUTH_HTTP_TIMEOUT": 5.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def make_verifier(
    identity_provider: IdentityProvider,  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[MakeVerifier]:
    """Build verifiers pointed at the IdP (settings overridable); all closed afterwards."""
    made: list[OAuthVerifier] = []

    def make(idp_url: str | None = None, **overrides: Any) -> OAuthVerifier:
        verifier = OAuthVerifier(
            settings_for(idp_url or identity_provider.url, tmp_path, **overrides)
        )
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


@pytest.fixture
def verifier(make_verifier: MakeVerifier) -> OAuthVerifier:
    return make_verifier()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The JWKS cache's clock, as a settable cell (the event loop's clock is untouched)."""
    now = [time.monotonic()]
    monkeypatch.setattr(oauth, "_monotonic", lambda: now[0])
    return now


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_token(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    # Built by hand: PyJWT itself refuses to HMAC with a PEM key, an attacker would not.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


# --- Google -------------------------------------------------------------------------------


async def test_google_good_token_is_accepted(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.sign(identity_provider.google_claims(sub="g-42"))

    identity = await verifier.verify_google(token)

    assert identity == ProviderIdentity(
        provider="google",
        subject="g-42",
        email="dancer@example.com",
        email_verified=True,
        name="Salsa Dancer",
    )


async def test_google_token_for_another_audience_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.sign(identity_provider.google_claims(aud="someone-else"))

    with pytest.raises(InvalidOAuthToken, match="another app"):
        await verifier.verify_google(token)


async def test_google_token_from_another_issuer_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.sign(identity_provider.google_claims(iss="https://evil.example"))

    with pytest.raises(InvalidOAuthToken, match="issuer"):
        await verifier.verify_google(token)


async def test_google_expired_token_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    now = int(time.time())
    token = identity_provider.sign(identity_provider.google_claims(iat=now - 3700, exp=now - 100))

    with pytest.raises(InvalidOAuthToken, match="expired"):
        await verifier.verify_google(token)


async def test_google_token_without_required_claim_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.sign(identity_provider.google_claims(iat=None))

    with pytest.raises(InvalidOAuthToken, match="iat"):
        await verifier.verify_google(token)


async def test_google_token_with_unknown_kid_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.sign(identity_provider.google_claims(), kid="nobody-knows-me")

    with pytest.raises(InvalidOAuthToken, match="unknown key"):
        await verifier.verify_google(token)


async def test_google_token_signed_by_another_key_with_same_kid_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.sign(
        identity_provider.google_claims(), kid=identity_provider.kid, key=new_rsa_key()
    )

    with pytest.raises(InvalidOAuthToken, match="signature"):
        await verifier.verify_google(token)


async def test_google_token_with_alg_none_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = jwt.encode(
        identity_provider.google_claims(),
        "",
        algorithm="none",
        headers={"kid": identity_provider.kid},
    )

    with pytest.raises(InvalidOAuthToken, match="algorithm we refuse"):
        await verifier.verify_google(token)
    assert identity_provider.jwks_requests == 0  # refused before any key lookup


async def test_google_token_hs256_signed_with_public_key_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    public_pem = identity_provider.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = _hs256_token(identity_provider.google_claims(), public_pem, identity_provider.kid)

    with pytest.raises(InvalidOAuthToken, match="algorithm we refuse"):
        await verifier.verify_google(token)
    assert identity_provider.jwks_requests == 0  # refused before any key lookup


async def test_google_es256_token_from_ec_key_is_accepted(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    ec_key = new_ec_key()
    identity_provider.publish(ec_key, "ec-key")
    token = identity_provider.sign(identity_provider.google_claims(), kid="ec-key", key=ec_key)

    identity = await verifier.verify_google(token)

    assert identity.provider == "google"


async def test_google_token_with_alg_not_matching_key_type_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    ec_key = new_ec_key()
    # ES256 header naming the RSA key: must not be checked with the wrong kind of key.
    token = identity_provider.sign(
        identity_provider.google_claims(), kid=identity_provider.kid, key=ec_key
    )

    with pytest.raises(InvalidOAuthToken, match="does not fit"):
        await verifier.verify_google(token)


async def test_garbage_google_token_is_refused(verifier: OAuthVerifier) -> None:
    with pytest.raises(InvalidOAuthToken, match="malformed"):
        await verifier.verify_google("not.a.jwt")


async def test_error_message_never_echoes_the_token(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.sign(identity_provider.google_claims(aud="someone-else"))

    with pytest.raises(InvalidOAuthToken) as caught:
        await verifier.verify_google(token)

    for part in token.split("."):
        assert part not in str(caught.value)


# --- Apple --------------------------------------------------------------------------------


async def test_apple_good_token_is_accepted_with_string_email_verified(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.sign(identity_provider.apple_claims(sub="a-7"))

    identity = await verifier.verify_apple(token)

    assert identity == ProviderIdentity(
        provider="apple",
        subject="a-7",
        email="hidden@privaterelay.appleid.com",
        email_verified=True,
        name=None,
    )


async def test_apple_string_false_email_verified_is_not_verified(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.sign(identity_provider.apple_claims(email_verified="false"))

    identity = await verifier.verify_apple(token)

    assert identity.email_verified is False


async def test_apple_token_from_another_issuer_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    # A Google-issued token must not pass as an Apple one.
    token = identity_provider.sign(identity_provider.apple_claims(iss=GOOGLE_ISSUER))

    with pytest.raises(InvalidOAuthToken, match="issuer"):
        await verifier.verify_apple(token)


# --- disabled providers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "method"),
    [
        ("GOOGLE_CLIENT_ID", "verify_google"),
        ("APPLE_CLIENT_ID", "verify_apple"),
        ("FACEBOOK_APP_ID", "verify_facebook"),
    ],
)
async def test_disabled_provider_raises_provider_disabled(
    identity_provider: IdentityProvider,  # noqa: F811
    make_verifier: MakeVerifier,
    setting: str,
    method: str,
) -> None:
    verifier = make_verifier(**{setting: ""})

    with pytest.raises(OAuthProviderDisabled):
        await getattr(verifier, method)("any-token")

    assert identity_provider.requests == []


# --- JWKS caching -------------------------------------------------------------------------


async def test_jwks_is_cached_between_verifications(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    for _ in range(3):
        await verifier.verify_google(identity_provider.sign(identity_provider.google_claims()))

    assert identity_provider.jwks_requests == 1


async def test_concurrent_first_verifications_fetch_jwks_once(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    tokens = [
        identity_provider.sign(identity_provider.google_claims(sub=f"u{n}")) for n in range(10)
    ]

    identities = await asyncio.gather(*(verifier.verify_google(token) for token in tokens))

    assert [identity.subject for identity in identities] == [f"u{n}" for n in range(10)]
    assert identity_provider.jwks_requests == 1


async def test_jwks_is_fetched_again_after_its_max_age(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
    clock: list[float],
) -> None:
    identity_provider.jwks_cache_control = "public, max-age=120"
    token = identity_provider.sign(identity_provider.google_claims())
    await verifier.verify_google(token)

    clock[0] += 119
    await verifier.verify_google(token)
    assert identity_provider.jwks_requests == 1

    clock[0] += 2
    await verifier.verify_google(token)
    assert identity_provider.jwks_requests == 2


async def test_unknown_kid_refetches_jwks_at_most_once_per_minute(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
    clock: list[float],
) -> None:
    await verifier.verify_google(identity_provider.sign(identity_provider.google_claims()))
    assert identity_provider.jwks_requests == 1

    for n in range(5):
        forged = identity_provider.sign(identity_provider.google_claims(), kid=f"forged-{n}")
        with pytest.raises(InvalidOAuthToken, match="unknown key"):
            await verifier.verify_google(forged)
        clock[0] += 10
    assert identity_provider.jwks_requests == 2

    clock[0] += 20  # 60 s after the forced refetch
    with pytest.raises(InvalidOAuthToken, match="unknown key"):
        await verifier.verify_google(
            identity_provider.sign(identity_provider.google_claims(), kid="forged-late")
        )
    assert identity_provider.jwks_requests == 3


async def test_rotated_key_published_later_is_picked_up(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    await verifier.verify_google(identity_provider.sign(identity_provider.google_claims()))
    new_key = new_rsa_key()
    identity_provider.publish(new_key, "idp-key-2")
    identity_provider.unpublish(identity_provider.kid)

    identity = await verifier.verify_google(
        identity_provider.sign(
            identity_provider.google_claims(sub="rotated"), kid="idp-key-2", key=new_key
        )
    )

    assert identity.subject == "rotated"
    assert identity_provider.jwks_requests == 2


# --- Facebook -----------------------------------------------------------------------------


async def test_facebook_valid_token_is_accepted(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.add_facebook_token(
        "EAAG-valid", "1015", email="Fan@Example.com", name="Fan Dancer"
    )

    identity = await verifier.verify_facebook(token)

    assert identity == ProviderIdentity(
        provider="facebook",
        subject="1015",
        email="fan@example.com",
        email_verified=True,
        name="Fan Dancer",
    )


async def test_facebook_token_without_email_has_no_verified_email(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.new_facebook_token("1016", name="No Mail")

    identity = await verifier.verify_facebook(token)

    assert (identity.email, identity.email_verified) == (None, False)


async def test_facebook_token_of_another_app_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.new_facebook_token("1015", app_id="999999")

    with pytest.raises(InvalidOAuthToken, match="another app"):
        await verifier.verify_facebook(token)


async def test_facebook_invalid_token_is_refused(verifier: OAuthVerifier) -> None:
    with pytest.raises(InvalidOAuthToken, match="not valid"):
        await verifier.verify_facebook("EAAG-never-issued")


async def test_facebook_expired_token_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.new_facebook_token("1015", expires_at=int(time.time()) - 10)

    with pytest.raises(InvalidOAuthToken):
        await verifier.verify_facebook(token)


async def test_facebook_me_id_mismatch_is_refused(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
) -> None:
    token = identity_provider.new_facebook_token("1015", me_user_id="2020")

    with pytest.raises(InvalidOAuthToken, match="does not match"):
        await verifier.verify_facebook(token)


# --- provider outages ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["verify_google", "verify_apple", "verify_facebook"])
async def test_provider_down_raises_provider_unavailable(
    identity_provider: IdentityProvider,  # noqa: F811
    make_verifier: MakeVerifier,
    method: str,
) -> None:
    verifier = make_verifier(free_port_url())
    token = (
        identity_provider.new_facebook_token("1015")
        if method == "verify_facebook"
        else identity_provider.sign(identity_provider.google_claims())
    )

    with pytest.raises(OAuthProviderUnavailable):
        await getattr(verifier, method)(token)


@pytest.mark.parametrize("method", ["verify_google", "verify_facebook"])
async def test_provider_5xx_raises_provider_unavailable(
    identity_provider: IdentityProvider,  # noqa: F811
    verifier: OAuthVerifier,
    method: str,
) -> None:
    token = (
        identity_provider.new_facebook_token("1015")
        if method == "verify_facebook"
        else identity_provider.sign(identity_provider.google_claims())
    )
    identity_provider.fail_status = 503

    with pytest.raises(OAuthProviderUnavailable):
        await getattr(verifier, method)(token)
