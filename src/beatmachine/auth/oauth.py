"""Verification of the tokens the apps bring back from Google, Apple and Facebook sign-in.

Google and Apple hand out OpenID Connect ID tokens: JWTs signed with keys that the
provider publishes as a JWKS, so they are checked locally once the keys are known.
Facebook hands out opaque access tokens that only its Graph API can vouch for.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

import httpx
import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from beatmachine.auth.exceptions import (
    InvalidOAuthToken,
    OAuthProviderDisabled,
    OAuthProviderUnavailable,
)
from beatmachine.core.config import Settings

log = structlog.get_logger(__name__)

Provider = Literal["google", "apple", "facebook"]
# Where the app instance keeps its one verifier (`AppState.extensions`).
OAUTH_VERIFIER: Final = "oauth_verifier"

# Clock skew tolerated on exp/iat/nbf; phones' clocks drift, but not by minutes.
LEEWAY_SECONDS: Final = 30
JWKS_DEFAULT_TTL: Final = 3600.0
# A provider saying max-age=0 must not turn every sign-in into a JWKS fetch, and a
# huge max-age must not pin a revoked key for days.
JWKS_MIN_TTL: Final = 60.0
JWKS_MAX_TTL: Final = 86400.0
# An unknown kid is attacker-controlled input, so it may force a fetch this rarely.
JWKS_REFETCH_INTERVAL: Final = 60.0
# Real ID tokens are ~1-2 kB and Facebook tokens a few hundred bytes; anything far
# bigger is junk we should not spend base64/JSON work on.
MAX_TOKEN_LENGTH: Final = 8192
MIN_RSA_BITS: Final = 2048

_ALLOWED_ALGORITHMS: Final = frozenset({"RS256", "ES256"})
_REQUIRED_CLAIMS: Final = ["sub", "iss", "aud", "exp", "iat"]
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def _monotonic() -> float:
    # Indirection so tests can move the cache's clock without touching the event loop's.
    return time.monotonic()


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


@dataclass(frozen=True)
class _SigningKey:
    key: _PublicKey
    # The JWK's own `alg`, when it pins one; a token must then use exactly that.
    alg: str | None


@dataclass
class _KeySet:
    keys: dict[str, _SigningKey] = field(default_factory=dict)
    expires_at: float = float("-inf")
    last_forced_refetch: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class OAuthVerifier:
    """Checks provider tokens and turns them into a `ProviderIdentity`.

    Keep one instance for the whole application: it holds the providers' signing keys
    and, unless one is passed in, its own HTTP client (closed by `aclose`).
    """

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        """Use `settings` for the providers' ids and URLs; `http` if given, else a new client."""
        self._settings = settings
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=settings.oauth_http_timeout,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self._key_sets: dict[str, _KeySet] = {}

    async def aclose(self) -> None:
        """Close the HTTP client if this verifier created it."""
        if self._owns_http:
            await self._http.aclose()

    # --- Google & Apple ---------------------------------------------------------------

    async def verify_google(self, id_token: str) -> ProviderIdentity:
        """Verify a Google ID token and return the identity it asserts."""
        settings = self._settings
        if not settings.google_client_id:
            raise OAuthProviderDisabled()
        claims = await self._verify_id_token(
            "google",
            id_token,
            jwks_url=settings.google_jwks_url,
            audience=settings.google_client_id,
            issuers=settings.google_issuers,
        )
        return _identity_from_claims("google", claims)

    async def verify_apple(self, id_token: str) -> ProviderIdentity:
        """Verify a Sign in with Apple ID token and return the identity it asserts.

        Apple puts no name in the token (the app gets it once, separately), so `name`
        is always None here.
        """
        settings = self._settings
        if not settings.apple_client_id:
            raise OAuthProviderDisabled()
        claims = await self._verify_id_token(
            "apple",
            id_token,
            jwks_url=settings.apple_jwks_url,
            audience=settings.apple_client_id,
            issuers=[settings.apple_issuer],
        )
        return _identity_from_claims("apple", claims)

    async def _verify_id_token(
        self,
        provider: Provider,
        token: str,
        *,
        jwks_url: str,
        audience: str,
        issuers: Container[str],
    ) -> dict[str, Any]:
        label = provider.capitalize()
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidOAuthToken(f"The {label} token is malformed.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidOAuthToken(f"The {label} token is malformed.") from None
        alg = header.get("alg")
        # Checked before any key is looked up: `none` and HS* (with the public key as
        # the HMAC secret) are the classic ways to forge a token that "verifies".
        if alg not in _ALLOWED_ALGORITHMS:
            raise InvalidOAuthToken(f"The {label} token uses a signature algorithm we refuse.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidOAuthToken(f"The {label} token names no signing key.")

        signing_key = await self._signing_key(provider, jwks_url, kid)
        if not _key_fits(signing_key, alg):
            raise InvalidOAuthToken(f"The {label} token's algorithm does not fit its key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=signing_key.key,
                algorithms=[alg],
                audience=audience,
                issuer=issuers,
                leeway=LEEWAY_SECONDS,
                options={"require": _REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidOAuthToken(f"The {label} token has expired.") from None
        except jwt.InvalidAudienceError:
            raise InvalidOAuthToken(f"The {label} token was issued for another app.") from None
        except jwt.InvalidIssuerError:
            raise InvalidOAuthToken(f"The {label} token has the wrong issuer.") from None
        except jwt.InvalidSignatureError:
            raise InvalidOAuthToken(f"The {label} token's signature is not valid.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidOAuthToken(f"The {label} token lacks the '{exc.claim}' claim.") from None
        except jwt.ImmatureSignatureError:
            raise InvalidOAuthToken(f"The {label} token is not valid yet.") from None
        except jwt.PyJWTError:
            raise InvalidOAuthToken(f"The {label} token could not be verified.") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidOAuthToken(f"The {label} token has no subject.")
        return claims

    async def _signing_key(self, provider: Provider, url: str, kid: str) -> _SigningKey:
        key_set = self._key_sets.setdefault(url, _KeySet())
        # Fast path without the lock: the common case is a cached, fresh, known key.
        known = key_set.keys.get(kid)
        if known is not None and _monotonic() < key_set.expires_at:
            return known
        async with key_set.lock:
            # Another request may have refreshed the set while this one waited.
            now = _monotonic()
            fetched = False
            if now >= key_set.expires_at:
                await self._refresh_keys(provider, url, key_set)
                fetched = True
            known = key_set.keys.get(kid)
            if known is None and not fetched and _may_force_refetch(key_set, now):
                # Set before fetching, so a failing provider is not retried by every request.
                key_set.last_forced_refetch = now
                await self._refresh_keys(provider, url, key_set)
                known = key_set.keys.get(kid)
        if known is None:
            raise InvalidOAuthToken(
                f"The {provider.capitalize()} token was signed with an unknown key."
            )
        return known

    async def _refresh_keys(self, provider: Provider, url: str, key_set: _KeySet) -> None:
        response = await self._get(provider, url)
        if response.status_code != 200:
            # The JWKS is public; any refusal is the provider's (or our config's) fault.
            log.warning("oauth_jwks_refused", provider=provider, status=response.status_code)
            raise OAuthProviderUnavailable()
        try:
            body = response.json()
        except ValueError:
            log.warning("oauth_jwks_not_json", provider=provider)
            raise OAuthProviderUnavailable() from None
        keys = _parse_jwks(body)
        if not keys:
            log.warning("oauth_jwks_empty", provider=provider)
            raise OAuthProviderUnavailable()
        key_set.keys = keys
        key_set.expires_at = _monotonic() + _cache_ttl(response.headers.get("cache-control"))
        log.info("oauth_jwks_refreshed", provider=provider, kids=sorted(keys))

    # --- Facebook -----------------------------------------------------------------------

    async def verify_facebook(self, access_token: str) -> ProviderIdentity:
        """Verify a Facebook user access token with the Graph API and return its user."""
        settings = self._settings
        if not settings.facebook_app_id:
            raise OAuthProviderDisabled()
        if not settings.facebook_app_secret:
            # Without the secret, debug_token cannot be asked; treat as not configured.
            log.error("oauth_facebook_secret_missing")
            raise OAuthProviderDisabled()
        if (
            not isinstance(access_token, str)
            or not access_token
            or len(access_token) > MAX_TOKEN_LENGTH
        ):
            raise InvalidOAuthToken("The Facebook token is malformed.")
        graph = settings.facebook_graph_url.rstrip("/")

        debug = await self._facebook_json(
            f"{graph}/debug_token",
            {
                "input_token": access_token,
                "access_token": f"{settings.facebook_app_id}|{settings.facebook_app_secret}",
            },
        )
        data = debug.get("data")
        if not isinstance(data, dict) or data.get("is_valid") is not True:
            raise InvalidOAuthToken("The Facebook token is not valid.")
        # Without this check a token the user gave to any other Facebook app would sign
        # them in here, letting that app's owner impersonate them.
        if str(data.get("app_id", "")) != settings.facebook_app_id:
            raise InvalidOAuthToken("The Facebook token was issued for another app.")
        kind = data.get("type")
        if kind is not None and kind != "USER":
            raise InvalidOAuthToken("The Facebook token is not a user token.")
        expires_at = data.get("expires_at")
        # 0 is Facebook's "never expires".
        if isinstance(expires_at, int | float) and 0 < expires_at <= time.time():
            raise InvalidOAuthToken("The Facebook token has expired.")
        user_id = data.get("user_id")
        if not isinstance(user_id, str | int) or not str(user_id):
            raise InvalidOAuthToken("The Facebook token belongs to no user.")

        me = await self._facebook_json(
            f"{graph}/me",
            {
                "fields": "id,name,email",
                "access_token": access_token,
                # Lets the app enable "Require App Secret" without breaking sign-in.
                "appsecret_proof": hmac.new(
                    settings.facebook_app_secret.encode(), access_token.encode(), hashlib.sha256
                ).hexdigest(),
            },
        )
        if str(me.get("id", "")) != str(user_id):
            raise InvalidOAuthToken("The Facebook profile does not match the token.")
        email = _str_or_none(me.get("email"))
        return ProviderIdentity(
            provider="facebook",
            subject=str(user_id),
            email=email.lower() if email else None,
            # Facebook only exposes addresses it has confirmed.
            email_verified=email is not None,
            name=_str_or_none(me.get("name")),
        )

    async def _facebook_json(self, url: str, params: Mapping[str, str]) -> dict[str, Any]:
        response = await self._get("facebook", url, params)
        status = response.status_code
        if status >= 500 or status == 429:
            log.warning("oauth_provider_error", provider="facebook", status=status)
            raise OAuthProviderUnavailable()
        try:
            body = response.json()
        except ValueError:
            body = None
        if status >= 400:
            # Graph answers a bad token with 4xx + OAuthException; log its code (never the
            # request, whose URL carries the token and our app secret).
            error = body.get("error") if isinstance(body, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            log.info("oauth_facebook_refused", status=status, code=code)
            raise InvalidOAuthToken("The Facebook token is not valid.")
        if not isinstance(body, dict):
            log.warning("oauth_provider_bad_body", provider="facebook", status=status)
            raise OAuthProviderUnavailable()
        return body

    # --- HTTP ---------------------------------------------------------------------------

    async def _get(
        self, provider: Provider, url: str, params: Mapping[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = await self._http.get(url, params=params)
        except httpx.HTTPError as exc:
            # `from None`: the chained exception holds the request URL, which for Facebook
            # carries the user's token and our app secret.
            log.warning("oauth_provider_unreachable", provider=provider, error=type(exc).__name__)
            raise OAuthProviderUnavailable() from None
        if response.status_code >= 500:
            log.warning("oauth_provider_error", provider=provider, status=response.status_code)
            raise OAuthProviderUnavailable()
        return response


# --- helpers ----------------------------------------------------------------------------


def _identity_from_claims(provider: Provider, claims: Mapping[str, Any]) -> ProviderIdentity:
    email = _str_or_none(claims.get("email"))
    return ProviderIdentity(
        provider=provider,
        subject=str(claims["sub"]),
        email=email.lower() if email else None,
        email_verified=email is not None and _truthy(claims.get("email_verified")),
        name=_str_or_none(claims.get("name")),
    )


def _truthy(value: Any) -> bool:
    # Apple sends email_verified as the string "true"; Google as a JSON boolean.
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def _str_or_none(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _may_force_refetch(key_set: _KeySet, now: float) -> bool:
    last = key_set.last_forced_refetch
    return last is None or now - last >= JWKS_REFETCH_INTERVAL


def _cache_ttl(cache_control: str | None) -> float:
    match = _MAX_AGE.search(cache_control or "")
    if match is None:
        return JWKS_DEFAULT_TTL
    return min(max(float(match.group(1)), JWKS_MIN_TTL), JWKS_MAX_TTL)


def _parse_jwks(body: Any) -> dict[str, _SigningKey]:
    """The usable public signature keys of a JWKS, by kid; everything else is skipped."""
    entries = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return {}
    keys: dict[str, _SigningKey] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            continue
        alg = entry.get("alg")
        if alg is not None and alg not in _ALLOWED_ALGORITHMS:
            continue
        key = _public_key(entry)
        if key is not None:
            keys[kid] = _SigningKey(key=key, alg=alg)
    return keys


def _public_key(entry: dict[str, Any]) -> _PublicKey | None:
    # Only asymmetric keys: an `oct` key here would let HS256 tokens in by the back door.
    try:
        if entry.get("kty") == "RSA":
            rsa_key = RSAAlgorithm.from_jwk(entry)
            if isinstance(rsa_key, rsa.RSAPrivateKey):
                rsa_key = rsa_key.public_key()
            return rsa_key if rsa_key.key_size >= MIN_RSA_BITS else None
        if entry.get("kty") == "EC":
            ec_key = ECAlgorithm.from_jwk(entry)
            if isinstance(ec_key, ec.EllipticCurvePrivateKey):
                ec_key = ec_key.public_key()
            return ec_key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    return None


def _key_fits(signing_key: _SigningKey, alg: str) -> bool:
    if signing_key.alg is not None and signing_key.alg != alg:
        return False
    key = signing_key.key
    if alg == "RS256":
        return isinstance(key, rsa.RSAPublicKey)
    if alg == "ES256":
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    return False
