"""ASGI middleware: request context (id, logs, metrics, security headers), body limits
and content types, per-client rate limiting."""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from collections.abc import Iterable, Mapping

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from beatmachine.core.config import Settings
from beatmachine.core.errors import (
    AppError,
    PayloadTooLarge,
    RateLimitExceeded,
    UnsupportedMediaType,
    ValidationFailed,
    error_response,
)
from beatmachine.core.metrics import Metrics
from beatmachine.core.ratelimit import RateLimiter
from beatmachine.core.security import InvalidToken, decode_access_token

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


class RequestContextMiddleware:
    """Outermost layer: request id, access log, metrics, security headers, last-resort 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
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
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Exact paths that take other bodies than JSON (XML imports, uploads).
        self.extra_types = {path: tuple(types) for path, types in (extra_types or {}).items()}

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
        if declared is not None:
            if not declared.isdigit():
                await error_response(PayloadTooLarge("Content-Length is not a number."))(
                    scope, receive, send
                )
                return
            if int(declared) > self.max_bytes:
                await error_response(self._too_large())(scope, receive, send)
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
        if declared is None and has_body:
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
                if received > self.max_bytes:
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
                await error_response(self._too_large())(scope, receive, send)

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

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request body is larger than {self.max_bytes} bytes.",
            details={"maxBytes": self.max_bytes},
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
