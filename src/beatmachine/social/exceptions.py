"""Errors of the social domain."""

from __future__ import annotations

from beatmachine.core.errors import AppError, ValidationFailed


class CommentNotFound(AppError):
    code, status, message = "COMMENT_NOT_FOUND", 404, "No such comment."


class NotificationNotFound(AppError):
    code, status, message = "NOTIFICATION_NOT_FOUND", 404, "No such notification."


class NotCommentAuthor(AppError):
    code, status, message = "UNAUTHORIZED", 403, "Only the comment's author may edit it."


class MayNotDeleteComment(AppError):
    code, status, message = (
        "UNAUTHORIZED",
        403,
        "Only the comment's author, the pattern's owner or an admin may delete it.",
    )


class CannotFollowYourself(ValidationFailed):
    message = "You cannot follow yourself."

    def __init__(self) -> None:
        super().__init__(
            details={
                "fields": [{"field": "path.user_id", "message": "is you", "type": "value_error"}]
            }
        )
