"""The social domain's logic, one concern per module: comments (follows, the feed and
notifications join them)."""

from beatmachine.social.service._comments import (
    COMMENT_CREATE_WINDOW,
    delete_comment,
    edit_comment,
    list_comments,
    post_comment,
    uncount_comments_of_purged,
)

__all__ = [
    "COMMENT_CREATE_WINDOW",
    "delete_comment",
    "edit_comment",
    "list_comments",
    "post_comment",
    "uncount_comments_of_purged",
]
