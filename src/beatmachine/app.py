"""The app factory: middleware, error handlers, routers and operations routes around the
shared services of `instance.build_state`."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

import sentry_sdk
from brotli_asgi import BrotliMiddleware
from fastapi import FastAPI
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from beatmachine import api
from beatmachine.core.config import Settings, get_settings
from beatmachine.core.errors import (
    AuthRequired,
    ServiceUnavailable,
    error_response,
    install_error_handlers,
)
from beatmachine.core.logging import configure_logging
from beatmachine.core.middleware import (
    BodyGuardMiddleware,
    EnvelopeCORSMiddleware,
    HeadMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
    UnexpectedErrorMiddleware,
)
from beatmachine.core.responses import NO_STORE, JSONResponse
from beatmachine.core.schemas import (
    BODY_ERROR_STATUSES,
    BODY_METHODS,
    COMMON_ERROR_STATUSES,
    error_responses,
)
from beatmachine.core.state import AppState
from beatmachine.core.storage import LocalStorage
from beatmachine.core.storage.routes import media_router
from beatmachine.instance import build_state

EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "ETag",
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    if settings.sentry_dsn:
        sentry_sdk.init(dsn=settings.sentry_dsn, send_default_pii=False)
    state = build_state(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await state.start(worker=settings.run_worker, scheduler=settings.run_scheduler)
        try:
            yield
        finally:
            await state.aclose()

    app = FastAPI(
        title="Beat Machine API",
        version="1.0.0",
        description="Backend of the SalsaNor Beat Machine.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        default_response_class=JSONResponse,
        # Declared once here, for every operation (and, being declared, FastAPI's own 422
        # schema never stands in for the envelope).
        responses=error_responses(*COMMON_ERROR_STATUSES),
        lifespan=lifespan,
    )
    app.openapi = _with_body_errors(app.openapi)  # type: ignore[method-assign]
    app.state.services = state
    app.state.sessionmaker = state.sessionmaker
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(api.pages)
    if isinstance(state.storage, LocalStorage):
        # Local files are served by the API itself; S3 clients fetch from the bucket.
        app.include_router(media_router(state.storage))
    _add_operations_routes(app, state)

    # Added innermost first: the last one wraps all the others.
    app.add_middleware(
        BodyGuardMiddleware,
        max_bytes=settings.max_body_bytes,
        extra_types=api.EXTRA_BODY_TYPES,
        streamed=api.streamed_bodies(settings),
    )
    app.add_middleware(UnexpectedErrorMiddleware)
    # Outside the body guard: refused bodies (413, 415) count and carry the limit headers.
    app.add_middleware(
        RateLimitMiddleware, limiter=state.limiter, settings=settings, jwt_secret=state.jwt_secret
    )
    app.add_middleware(BrotliMiddleware, minimum_size=1024, gzip_fallback=True, quality=4)
    # Outside compression: a HEAD answers the headers of the GET as it went out.
    app.add_middleware(HeadMiddleware, routes=app.router.routes)
    app.add_middleware(
        EnvelopeCORSMiddleware,
        allow_origins=settings.effective_cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID", "If-None-Match"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
    app.add_middleware(RequestContextMiddleware, metrics=state.metrics)
    return app


def _with_body_errors(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document with 413 and 415 on every operation that takes a body: the body
    guard answers them to any POST, PUT or PATCH, before routing."""

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's, built once and cached
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                if method in BODY_METHODS:
                    for status in BODY_ERROR_STATUSES:
                        operation["responses"].setdefault(str(status), _envelope(status))
        return schema

    return openapi


def _envelope(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }


def _add_operations_routes(app: FastAPI, state: AppState) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"success": True, "data": {"status": "ok"}}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        checks: dict[str, str] = {}
        try:
            async with state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            await state.cache.ping()
            await state.limiter.ping()
            checks["redis"] = "ok" if state.settings.redis_url else "in-process"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
        try:
            await state.storage.ping()
            checks["storage"] = "ok"
        except Exception as exc:
            checks["storage"] = f"unreachable: {type(exc).__name__}"
        if all(value in ("ok", "in-process") for value in checks.values()):
            return JSONResponse({"success": True, "data": {"status": "ready", "checks": checks}})
        return error_response(ServiceUnavailable("Not ready.", details={"checks": checks}))

    token = state.settings.metrics_token
    if not token:
        return  # not served: no route, so a 404 like any unknown path

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics, to the scraper holding `METRICS_TOKEN` only."""
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        # Compared in constant time, so the answer's timing tells nothing of the token.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            raise AuthRequired(
                "Metrics need the bearer token set in METRICS_TOKEN.",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type, headers={"Cache-Control": NO_STORE})
