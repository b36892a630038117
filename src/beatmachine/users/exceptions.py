"""Errors of the users domain."""

from __future__ import annotations

from beatmachine.core.errors import AppError


class UserNotFound(AppError):
    code, status, message = "USER_NOT_FOUND", 404, "No such user."
