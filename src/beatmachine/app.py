"""The app factory: middleware, error handlers, routers and operations routes around the
shared services of `instance.build_state`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sentry_sdk
from brotli_asgi import BrotliMiddleware
from fastapi import FastAPI
from sqlalchemy import text
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from beatmachine import api
from beatmachine.core.config import Settings, get_settings
from beatmachine.core.errors import ServiceUnavailable, error_response, install_error_handlers
from beatmachine.core.logging import configure_logging
from beatmachine.core.middleware import (
    BodyGuardMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
    UnexpectedErrorMiddleware,
)
from beatmachine.core.responses import JSONResponse
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
        lifespan=lifespan,
    )
    app.state.services = state
    app.state.sessionmaker = state.sessionmaker
    install_error_handlers(app)
    app.include_router(api.router)
    if isinstance(state.storage, LocalStorage):
        # Local files are served by the API itself; S3 clients fetch from the bucket.
        app.include_router(media_router(state.storage))
    _add_operations_routes(app, state)

    # Added innermost first: the last one wraps all the others.
    app.add_middleware(
        BodyGuardMiddleware, max_bytes=settings.max_body_bytes, extra_types=api.EXTRA_BODY_TYPES
    )
    app.add_middleware(UnexpectedErrorMiddleware)
    # Outside the body guard: refused bodies (413, 415) count and carry the limit headers.
    app.add_middleware(
        RateLimitMiddleware, limiter=state.limiter, settings=settings, jwt_secret=state.jwt_secret
    )
    app.add_middleware(BrotliMiddleware, minimum_size=1024, gzip_fallback=True, quality=4)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.effective_cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID", "If-None-Match"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
    app.add_middleware(RequestContextMiddleware, metrics=state.metrics)
    return app


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

    @app.get("/metrics", include_in_schema=False)
    async def metrics(_request: Request) -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)
