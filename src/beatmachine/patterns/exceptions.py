"""Errors of the patterns domain."""

from __future__ import annotations

from beatmachine.core.errors import AppError


class PatternNotFound(AppError):
    code, status, message = "PATTERN_NOT_FOUND", 404, "No such pattern."


class PatternVersionNotFound(AppError):
    code, status, message = "PATTERN_VERSION_NOT_FOUND", 404, "No such version of this pattern."


class ShareLinkNotFound(AppError):
    code, status, message = (
        "SHARE_LINK_NOT_FOUND",
        404,
        "This share link does not exist or was revoked.",
    )


class NotPatternOwner(AppError):
    code, status, message = "UNAUTHORIZED", 403, "Only the pattern's owner may do this."


class RestoreWindowOver(AppError):
    code, status, message = "PATTERN_NOT_FOUND", 404, "This pattern can no longer be restored."
