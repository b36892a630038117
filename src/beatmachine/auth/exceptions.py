"""Errors of the auth domain, each with its contract code."""

from __future__ import annotations

from beatmachine.core.errors import AppError, AuthRequired


class InvalidCredentials(AppError):
    code, status, message = "INVALID_CREDENTIALS", 401, "Wrong email or password."


class UserExists(AppError):
    code, status, message = "USER_EXISTS", 409, "An account with this email already exists."


class InvalidToken(AppError):
    """A refresh, reset or verification token that is unknown, used, revoked or expired."""

    code, status, message = "INVALID_TOKEN", 400, "The token is invalid or has expired."


class InvalidRefreshToken(InvalidToken):
    status = 401


class RefreshTokenReused(InvalidRefreshToken):
    """A spent refresh token came back: it leaked, so its session is revoked, and the
    revocation is kept although the request fails."""

    message = "This refresh token was already used; the session is revoked."
    keeps_changes = True


class InvalidOAuthToken(InvalidToken):
    status, message = 401, "The provider token could not be verified."


class OAuthProviderDisabled(AppError):
    code, status, message = "OAUTH_PROVIDER_DISABLED", 404, "This sign-in provider is not enabled."


class OAuthProviderUnavailable(AppError):
    code, status, message = (
        "OAUTH_PROVIDER_UNAVAILABLE",
        503,
        "The sign-in provider could not be reached; try again.",
    )


class SessionNotFound(AppError):
    code, status, message = "SESSION_NOT_FOUND", 404, "No such session."


class TokenRevoked(AuthRequired):
    message = "The session has ended; sign in again."
