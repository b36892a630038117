"""ASGI middleware: request context (id, logs, metrics, security headers, private answers
kept out of caches), HEAD for every GET route, CORS refusals as the envelope, body limits
and content types, per-client rate limiting."""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from beatmachine.core.config import Settings
from beatmachine.core.errors import (
    AppError,
    CorsOriginRefused,
    CorsRequestRefused,
    PayloadTooLarge,
    RateLimitExceeded,
    UnsupportedMediaType,
    ValidationFailed,
    error_response,
)
from beatmachine.core.metrics import Metrics
from beatmachine.core.ratelimit import RateLimiter
from beatmachine.core.responses import NO_STORE, declared_no_store
from beatmachine.core.security import InvalidToken, decode_access_token
from beatmachine.core.uploads import MULTIPART_OVERHEAD

log = structlog.get_logger("beatmachine.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-site",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}
# The API answers JSON only; the interactive docs page needs scripts and styles.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
    "https://fastapi.tiangolo.com; frame-ancestors 'none'"
)


def _route_template(scope: Scope) -> str:
    """The matched route's template (`/api/users/{user_id}`), never the raw path with ids."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not path:
        return "unmatched"
    # Routes of included routers carry their path relative to the `/api` registry.
    if scope["path"].startswith("/api/") and not str(path).startswith("/api"):
        return "/api" + str(path)
    return str(path)


def _cache_policy(scope: Scope, headers: MutableHeaders, with_credentials: bool) -> None:
    """`no-store` for what must never sit in a cache: the answers of routes that declared
    `NoStore` (tokens), and answers to a request that carried credentials, which are the
    caller's own, unless their route chose a policy (a public document stays cacheable)."""
    if declared_no_store(scope):
        headers["Cache-Control"] = NO_STORE
    elif with_credentials:
        headers.setdefault("Cache-Control", NO_STORE)


class RequestContextMiddleware:
    """Outermost layer: request id, access log, metrics, security headers, the cache policy
    of private answers, last-resort 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        incoming = request_headers.get("x-request-id", "")
        with_credentials = "authorization" in request_headers
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        docs = scope["path"].startswith("/api/docs") or scope["path"].startswith("/api/redoc")

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else API_CSP)
                _cache_policy(scope, headers, with_credentials)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            log.exception("unhandled_error", path=scope["path"], error_type=type(exc).__name__)
            if not response_started:
                await error_response(AppError())(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe(scope["method"], route, status, elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")


class HeadMiddleware:
    """HEAD for every GET route (RFC 9110 9.3.2): the request is served as the GET it asks
    about, so status and headers are the GET's (ETag, Cache-Control, Content-Type,
    Content-Length, a 304 for a matching `If-None-Match`), and the body is dropped. A route
    that answers HEAD itself keeps it. Outside the compression layer, so Content-Encoding
    and Content-Length are those of the GET with the same `Accept-Encoding`."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        # The app's routes (the live list), to tell routes that answer HEAD themselves.
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        if any(route.matches(scope)[0] is Match.FULL for route in self.routes):
            await self.app(scope, receive, without_body)
            return
        # In place, so the layers outside see the route the GET matched; they log HEAD.
        scope["method"] = "GET"
        try:
            await self.app(scope, receive, without_body)
        finally:
            scope["method"] = "HEAD"


class EnvelopeCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, unchanged but for a refused preflight, which answers the
    error envelope: 403 `CORS_ORIGIN_NOT_ALLOWED` when the origin may not call the API,
    else 400 `CORS_REQUEST_NOT_ALLOWED` for a method, headers (or private-network access)
    the API does not allow; `details.refused` names what was refused."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = self._refused(request_headers)
        error: AppError = (
            CorsOriginRefused(details={"refused": refused})
            if "origin" in refused
            else CorsRequestRefused(details={"refused": refused})
        )
        # The preflight's own headers (Vary, Access-Control-Allow-*) stay as Starlette set
        # them; only the body and its type change.
        error.headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-type", "content-length")
        }
        return error_response(error)

    def _refused(self, request_headers: Headers) -> list[str]:
        """What of the preflight is not allowed, in the terms Starlette checks."""
        refused = []
        if not self.is_allowed_origin(origin=request_headers["origin"]):
            refused.append("origin")
        if request_headers["access-control-request-method"] not in self.allow_methods:
            refused.append("method")
        requested = request_headers.get("access-control-request-headers")
        if not self.allow_all_headers and requested is not None:
            names = (name.strip().lower() for name in requested.split(","))
            if any(name not in self.allow_headers for name in names):
                refused.append("headers")
        private = request_headers.get("access-control-request-private-network")
        if private is not None and not self.allow_private_network:
            refused.append("private-network")
        return refused


class UnexpectedErrorMiddleware:
    """Near the app: an unexpected exception becomes the 500 envelope here, so the outer
    layers (rate-limit headers, CORS, request id) still decorate it and browsers can
    read it. `RequestContextMiddleware` stays the last resort."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            # The client went away while its body was being read (an upload cut off):
            # there is no one to answer, and nothing went wrong here.
            log.info("client_disconnected", path=scope["path"])
        except Exception as exc:
            if response_started:
                raise
            log.exception("unhandled_error", path=scope["path"], error_type=type(exc).__name__)
            await error_response(AppError())(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _has_nul(scope: Scope) -> bool:
    """NUL in the path or query: no database stores it, so refuse it at the door."""
    raw_query: bytes = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"%00" in raw_query or b"\x00" in raw_query


class BodyGuardMiddleware:
    """413 for bodies over `max_bytes` (declared or streamed), 415 for bodies that are not JSON."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        extra_types: Mapping[str, Iterable[str]] | None = None,
        streamed: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Exact paths that take other bodies than JSON (XML imports, uploads).
        self.extra_types = {path: tuple(types) for path, types in (extra_types or {}).items()}
        # Exact paths whose handlers read the body as a stream (uploads), with the limit
        # of their file: such a body is never gathered here, only counted, and may be
        # that long plus the multipart framing.
        self.streamed = dict(streamed or {})

    def _type_allowed(self, path: str, content_type: str) -> bool:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type == "application/json" or media_type.endswith("+json"):
            return True
        return media_type in self.extra_types.get(path, ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            error = ValidationFailed(
                "The URL must not contain the NUL character (%00).",
                details={"fields": [{"field": "url", "message": "contains %00", "type": "nul"}]},
            )
            await error_response(error)(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        file_limit = self.streamed.get(scope["path"])
        limit = self.max_bytes if file_limit is None else file_limit + MULTIPART_OVERHEAD
        reported = self.max_bytes if file_limit is None else file_limit
        if declared is not None:
            if not declared.isdigit():
                await error_response(PayloadTooLarge("Content-Length is not a number."))(
                    scope, receive, send
                )
                return
            if int(declared) > limit:
                await error_response(self._too_large(reported))(scope, receive, send)
                return
        has_body = (declared is not None and declared != "0") or "transfer-encoding" in headers
        if has_body and not self._type_allowed(scope["path"], headers.get("content-type", "")):
            await error_response(
                UnsupportedMediaType(
                    "Send the body as application/json.",
                    details={"contentType": headers.get("content-type", "")},
                )
            )(scope, receive, send)
            return
        if declared is None and has_body and scope["path"] not in self.streamed:
            # A streamed (chunked) body: read it here, up to the limit, because an
            # exception raised while the framework reads the body becomes its 400.
            await self._buffered(scope, receive, send)
            return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await error_response(self._too_large(reported))(scope, receive, send)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await error_response(self._too_large())(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self, limit: int | None = None) -> PayloadTooLarge:
        limit = self.max_bytes if limit is None else limit
        return PayloadTooLarge(
            f"The request body is larger than {limit} bytes.",
            details={"maxBytes": limit},
        )


def client_ip(scope: Scope, trusted_proxies: Iterable[str]) -> str:
    """The peer address, or the first untrusted hop of X-Forwarded-For behind trusted proxies."""
    peer = scope["client"][0] if scope.get("client") else "unknown"
    networks = [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies]
    if not networks:
        return str(peer)

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if not trusted(peer):
        return str(peer)
    forwarded = Headers(scope=scope).get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop
    return hops[0] if hops else str(peer)


class RateLimitMiddleware:
    """Per-client limits on `/api`: the user when a valid token is sent, else the IP.

    Every response carries the `X-RateLimit-*` headers; a refused request gets 429
    and `Retry-After`.
    """

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter, settings: Settings, jwt_secret: str
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.settings = settings
        self.jwt_secret = jwt_secret

    def _client(self, scope: Scope) -> tuple[str, int]:
        authorization = Headers(scope=scope).get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                claims = decode_access_token(self.jwt_secret, token.strip())
            except InvalidToken:
                pass
            else:
                return f"user:{claims.user_id}", self.settings.rate_limit_authenticated
        ip = client_ip(scope, self.settings.trusted_proxies)
        return f"ip:{ip}", self.settings.rate_limit_anonymous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.limiter.enabled
            or not scope["path"].startswith("/api")
            or scope["method"] == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        key, limit = self._client(scope)
        decision = await self.limiter.hit(
            "requests", key, limit=limit, window=self.settings.rate_limit_window
        )
        if not decision.allowed:
            headers = {**decision.headers(), "Retry-After": str(decision.retry_after)}
            await error_response(RateLimitExceeded(headers=headers))(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in decision.headers().items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
