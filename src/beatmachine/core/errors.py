"""One error type for the whole service and the handlers that render its envelope."""

from __future__ import annotations

import re
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

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


class CorsOriginRefused(AppError):
    code, status = "CORS_ORIGIN_NOT_ALLOWED", 403
    message = "This origin may not call the API from a browser."


class CorsRequestRefused(AppError):
    code, status = "CORS_REQUEST_NOT_ALLOWED", 400
    message = "The API does not allow this cross-origin request (method or headers)."


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


# A validation error reports at most this many fields, then how many more failed: the
# answer stays small however many keys a body holds.
MAX_REPORTED_FIELDS = 20
MAX_FIELD_LENGTH = 120
MAX_MESSAGE_LENGTH = 300
# Shown escaped (`\\u003c`), so no reported text can become markup where a client shows it.
_UNSAFE_IN_FIELD = re.compile(r"[<>&\"'\\\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UNSAFE_IN_MESSAGE = re.compile(r"[<>&\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _plain(value: str, unsafe: re.Pattern[str], limit: int) -> str:
    """`value` cut to `limit` characters, with `unsafe` characters escaped as `\\uXXXX`."""
    escaped = unsafe.sub(lambda match: f"\\u{ord(match.group()):04x}", value[: limit + 1])
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "\u2026"


def validation_details(errors: list[Any]) -> dict[str, Any]:
    """Pydantic's errors as `{"fields": [{"field", "message", "type"}]}`: the input is never
    echoed, field names and messages are plain bounded text, and past
    `MAX_REPORTED_FIELDS` only the count of the rest is given (`moreFields`)."""
    fields = []
    for err in errors[:MAX_REPORTED_FIELDS]:
        location = [str(part) for part in err.get("loc", ())]
        if location[:1] == ["body"]:
            location = location[1:]
        fields.append(
            {
                "field": _plain(".".join(location), _UNSAFE_IN_FIELD, MAX_FIELD_LENGTH) or "body",
                "message": _plain(
                    str(err.get("msg", "invalid")), _UNSAFE_IN_MESSAGE, MAX_MESSAGE_LENGTH
                ),
                "type": _plain(str(err.get("type", "invalid")), _UNSAFE_IN_FIELD, MAX_FIELD_LENGTH),
            }
        )
    details: dict[str, Any] = {"fields": fields}
    if len(errors) > MAX_REPORTED_FIELDS:
        details["moreFields"] = len(errors) - MAX_REPORTED_FIELDS
    return details


def unreadable_body(reason: str) -> ValidationFailed:
    """The 422 of a body that is not JSON the service can read (malformed, not UTF-8, too
    deeply nested, a number too large), whichever layer noticed."""
    return ValidationFailed(
        f"The request body is not valid JSON: {reason}.",
        details={
            "fields": [{"field": "body", "message": "not valid JSON", "type": "json_invalid"}]
        },
    )


def _unreadable_reason(cause: BaseException) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(cause, RecursionError):
        return "it is nested too deeply"
    return "it holds a value that cannot be read (a number too large, say)"


# The methods a route can accept, in the order `Allow` lists them.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at the request's path (RFC 9110 15.5.6), with HEAD
    wherever GET is (the HEAD middleware answers it for any GET route)."""
    scope: Scope = request.scope
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return allowed


async def _app_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return error_response(exc)


async def _validation_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        return error_response(unreadable_body("it is malformed"))
    return error_response(ValidationFailed(details=validation_details(errors)))


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # The framework could not decode the JSON body: invalid UTF-8, nesting past the
        # parser's depth, an integer past Python's digit limit. That is malformed JSON.
        return error_response(unreadable_body(_unreadable_reason(exc.__cause__)))
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
    if exc.status_code == 405:
        # The route that matched lists only its own methods; the path may have others.
        error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return error_response(error)


async def _unexpected_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    return error_response(AppError())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
