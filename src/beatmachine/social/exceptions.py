"""Errors of the social domain."""

from __future__ import annotations

from beatmachine.core.errors import AppError


class CommentNotFound(AppError):
    code, status, message = "COMMENT_NOT_FOUND", 404, "No such comment."


class NotCommentAuthor(AppError):
    code, status, message = "UNAUTHORIZED", 403, "Only the comment's author may edit it."


class MayNotDeleteComment(AppError):
    code, status, message = (
        "UNAUTHORIZED",
        403,
        "Only the comment's author, the pattern's owner or an admin may delete it.",
    )
