"""One error type for the whole service and the handlers that render its envelope."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from beatmachine.core.responses import JSONResponse

log = structlog.get_logger(__name__)


class AppError(Exception):
    """An error the client is meant to see: a contract code, a message, a status."""

    code = "SERVER_ERROR"
    status = 500
    message = "Something went wrong on our side."
    # When true, the request's transaction is committed although the request fails
    # (e.g. a detected token reuse revokes the session, then answers 401).
    keeps_changes = False

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.details = details
        self.headers = headers
        super().__init__(self.message)


class AuthRequired(AppError):
    code, status, message = "AUTH_REQUIRED", 401, "Authentication is required."


class Forbidden(AppError):
    code, status, message = "UNAUTHORIZED", 403, "You are not allowed to do this."


class NotFound(AppError):
    code, status, message = "NOT_FOUND", 404, "Not found."


class MethodNotAllowed(AppError):
    code, status, message = "METHOD_NOT_ALLOWED", 405, "Method not allowed."


class Conflict(AppError):
    code, status, message = "CONFLICT", 409, "The request conflicts with the current state."


class PayloadTooLarge(AppError):
    code, status, message = "PAYLOAD_TOO_LARGE", 413, "The request body is too large."


class UnsupportedMediaType(AppError):
    code, status, message = "UNSUPPORTED_MEDIA_TYPE", 415, "Send the body as application/json."


class ValidationFailed(AppError):
    code, status, message = "VALIDATION_ERROR", 422, "The request is not valid."


class RateLimitExceeded(AppError):
    code, status, message = "RATE_LIMIT_EXCEEDED", 429, "Too many requests; try again later."


class ServiceUnavailable(AppError):
    code, status, message = "SERVICE_UNAVAILABLE", 503, "A service we depend on is unavailable."


_STATUS_ERRORS: dict[int, type[AppError]] = {
    401: AuthRequired,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    429: RateLimitExceeded,
    503: ServiceUnavailable,
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"success": False, "error": error}


def error_response(error: AppError) -> JSONResponse:
    return JSONResponse(
        error_body(error.code, error.message, error.details),
        status_code=error.status,
        headers=error.headers,
    )


def validation_details(errors: list[Any]) -> dict[str, Any]:
    """Pydantic's errors as `{"fields": [{"field", "message", "type"}]}`, input never echoed."""
    fields = []
    for err in errors:
        location = [str(part) for part in err.get("loc", ()) if part not in ("body",)]
        fields.append(
            {
                "field": ".".join(location) or "body",
                "message": str(err.get("msg", "invalid")),
                "type": str(err.get("type", "invalid")),
            }
        )
    return {"fields": fields}


async def _app_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return error_response(exc)


async def _validation_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        details = {
            "fields": [{"field": "body", "message": "not valid JSON", "type": "json_invalid"}]
        }
        return error_response(
            ValidationFailed("The request body is not valid JSON.", details=details)
        )
    return error_response(ValidationFailed(details=validation_details(errors)))


async def _http_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error_type = _STATUS_ERRORS.get(exc.status_code)
    if error_type is None:
        error = AppError("Request failed.")
        error.status = exc.status_code
        error.code = "HTTP_ERROR"
    else:
        error = error_type()
    if exc.status_code == 404:
        error.message = "No such resource."
    error.headers = dict(exc.headers) if exc.headers else None
    return error_response(error)


async def _unexpected_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    return error_response(AppError())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
