"""A loopback identity provider for tests: a real HTTP server on 127.0.0.1.

It plays Google/Apple (a JWKS at `/jwks` plus a signer for ID tokens) and Facebook's
Graph API (`/debug_token` and `/me`, backed by an in-memory table of access tokens).

    def test_x(identity_provider: IdentityProvider) -> None:
        token = identity_provider.sign(identity_provider.google_claims(sub="42"))
        settings = Settings(**identity_provider.settings_env(), VAR_DIR=tmp_path)

Use the `identity_provider` fixture (fresh server per test) by importing it into a test
module or conftest: `from tests.idp import identity_provider`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

GOOGLE_CLIENT_ID = "test-client.apps.googleusercontent.com"
GOOGLE_ISSUER = "https://accounts.google.com"
APPLE_CLIENT_ID = "no.salsanor.beatmachine.test"
APPLE_ISSUER = "https://appleid.apple.com"
FACEBOOK_APP_ID = "100200300400"
FACEBOOK_APP_SECRET = "fb-test-app-secret"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def _default_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 private key (for ES256)."""
    return ec.generate_private_key(ec.SECP256R1())


def free_port_url() -> str:
    """The URL of a loopback port that nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class FacebookToken:
    """What the fake Graph API knows about one user access token."""

    user_id: str
    email: str | None
    name: str | None
    app_id: str
    expires_at: int  # unix seconds; 0 = never
    me_user_id: str | None = None  # what /me answers as id, to fake a mismatch


class IdentityProvider:
    """The fake provider; start with `start()` (or the fixture), stop with `stop()`."""

    def __init__(
        self,
        *,
        facebook_app_id: str = FACEBOOK_APP_ID,
        facebook_app_secret: str = FACEBOOK_APP_SECRET,
    ) -> None:
        # Shared across instances: RSA generation costs ~50 ms, and tests that need a
        # different key make their own.
        self.key: PrivateKey = _default_key()
        self.kid = "idp-key-1"
        self.facebook_app_id = facebook_app_id
        self.facebook_app_secret = facebook_app_secret
        self.jwks_cache_control = "public, max-age=3600"
        # When set, every endpoint answers with this status (to fake an outage).
        self.fail_status: int | None = None
        self.jwks_requests = 0
        self.requests: list[str] = []  # request paths (no query), in order
        self._published: dict[str, PrivateKey] = {self.kid: self.key}
        self._facebook: dict[str, FacebookToken] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (no trailing slash)."""
        assert self._server is not None, "identity provider not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    def start(self) -> IdentityProvider:
        """Listen on a random free loopback port, serving from a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        # A short poll interval so `stop()` (shutdown) returns promptly.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="idp", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def settings_env(self) -> dict[str, str]:
        """Settings aliases pointing Google, Apple and Facebook at this provider."""
        return {
            "GOOGLE_CLIENT_ID": GOOGLE_CLIENT_ID,
            "GOOGLE_JWKS_URL": self.jwks_url,
            "GOOGLE_ISSUERS": GOOGLE_ISSUER,
            "APPLE_CLIENT_ID": APPLE_CLIENT_ID,
            "APPLE_JWKS_URL": self.jwks_url,
            "APPLE_ISSUER": APPLE_ISSUER,
            "FACEBOOK_APP_ID": self.facebook_app_id,
            "FACEBOOK_APP_SECRET": self.facebook_app_secret,
            "FACEBOOK_GRAPH_URL": self.url,
            "OAUTH_HTTP_TIMEOUT": "5",
        }

    # --- keys & ID tokens -----------------------------------------------------------------

    def publish(self, key: PrivateKey, kid: str) -> None:
        """Add (or replace) a key in the served JWKS."""
        with self._lock:
            self._published[kid] = key

    def unpublish(self, kid: str) -> None:
        """Remove a key from the served JWKS."""
        with self._lock:
            self._published.pop(kid, None)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document as served."""
        with self._lock:
            published = dict(self._published)
        keys = []
        for kid, key in published.items():
            if isinstance(key, rsa.RSAPrivateKey):
                jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
                alg = "RS256"
            else:
                jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
                alg = "ES256"
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = None,
        key: PrivateKey | None = None,
        algorithm: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Mint a JWT; by default RS256 with the provider's current key and kid."""
        key = key or self.key
        if algorithm is None:
            algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(
            claims,
            key,
            algorithm=algorithm,
            headers={"kid": kid or self.kid, **(headers or {})},
        )

    def google_claims(self, **overrides: Any) -> dict[str, Any]:
        """Claims of a good Google ID token; `overrides` replace (or, as None, drop) claims."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": GOOGLE_ISSUER,
            "aud": GOOGLE_CLIENT_ID,
            "azp": GOOGLE_CLIENT_ID,
            "sub": "110169484474386276334",
            "email": "Dancer@Example.com",
            "email_verified": True,
            "name": "Salsa Dancer",
            "iat": now,
            "exp": now + 3600,
        }
        return _apply(claims, overrides)

    def apple_claims(self, **overrides: Any) -> dict[str, Any]:
        """Claims of a good Apple ID token (email_verified as Apple's string)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": APPLE_ISSUER,
            "aud": APPLE_CLIENT_ID,
            "sub": "001234.abcdef0123456789.0042",
            "email": "Hidden@PrivateRelay.AppleID.com",
            "email_verified": "true",
            "is_private_email": "true",
            "auth_time": now,
            "iat": now,
            "exp": now + 600,
        }
        return _apply(claims, overrides)

    # --- Facebook ---------------------------------------------------------------------------

    def add_facebook_token(
        self,
        token: str,
        user_id: str,
        email: str | None = None,
        name: str | None = None,
        app_id: str | None = None,
        expires_at: int | None = None,
        *,
        me_user_id: str | None = None,
    ) -> str:
        """Make `token` a known user access token (for our app unless `app_id` says else)."""
        with self._lock:
            self._facebook[token] = FacebookToken(
                user_id=user_id,
                email=email,
                name=name,
                app_id=app_id or self.facebook_app_id,
                expires_at=int(time.time()) + 3600 if expires_at is None else expires_at,
                me_user_id=me_user_id,
            )
        return token

    def new_facebook_token(self, user_id: str = "10158000000000001", **kwargs: Any) -> str:
        """Register and return a fresh random access token."""
        return self.add_facebook_token(f"EAAG{uuid.uuid4().hex}", user_id, **kwargs)

    # --- request handling (runs on the server's threads) -----------------------------------

    def _handle(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append(path)
            if path == "/jwks":
                self.jwks_requests += 1
            fail = self.fail_status
        if fail is not None:
            return fail, {}, {"error": "provider down"}
        if path == "/jwks":
            return 200, {"Cache-Control": self.jwks_cache_control}, self.jwks()
        if path == "/debug_token":
            return self._debug_token(query)
        if path == "/me":
            return self._me(query)
        return 404, {}, {"error": "not found"}

    def _debug_token(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if query.get("access_token") != f"{self.facebook_app_id}|{self.facebook_app_secret}":
            return 400, {}, _graph_error("Invalid OAuth access token signature.", 190)
        record = self._facebook_record(query.get("input_token", ""))
        if record is None:
            data: dict[str, Any] = {
                "error": {"code": 190, "message": "Invalid OAuth access token."},
                "is_valid": False,
                "scopes": [],
            }
            return 200, {}, {"data": data}
        data = {
            "app_id": record.app_id,
            "type": "USER",
            "application": "Beat Machine",
            "expires_at": record.expires_at,
            "is_valid": not _expired(record),
            "scopes": ["email", "public_profile"],
            "user_id": record.user_id,
        }
        return 200, {}, {"data": data}

    def _me(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        token = query.get("access_token", "")
        record = self._facebook_record(token)
        if record is None or _expired(record):
            return 400, {}, _graph_error("Invalid OAuth access token.", 190)
        proof = query.get("appsecret_proof")
        if proof is not None:
            expected = hmac.new(
                self.facebook_app_secret.encode(), token.encode(), hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(proof, expected):
                return 400, {}, _graph_error("Invalid appsecret_proof provided.", 100)
        fields = query.get("fields", "id,name").split(",")
        profile = {
            "id": record.me_user_id or record.user_id,
            "name": record.name,
            "email": record.email,
        }
        return 200, {}, {k: v for k, v in profile.items() if k in fields and v is not None}

    def _facebook_record(self, token: str) -> FacebookToken | None:
        with self._lock:
            return self._facebook.get(token)


def _apply(claims: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _expired(record: FacebookToken) -> bool:
    return record.expires_at != 0 and record.expires_at <= time.time()


def _graph_error(message: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": "OAuthException", "code": code}}


def _make_handler(idp: IdentityProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            status, headers, body = idp._handle(parts.path, query)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean (and tokens out of it)

    return Handler


@pytest.fixture
def identity_provider() -> Iterator[IdentityProvider]:
    """A started loopback identity provider, stopped after the test."""
    idp = IdentityProvider().start()
    try:
        yield idp
    finally:
        idp.stop()
