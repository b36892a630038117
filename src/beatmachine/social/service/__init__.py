"""The social domain's logic, one concern per module: comments and follows (the feed
and notifications join them)."""

from beatmachine.social.service._comments import (
    COMMENT_CREATE_WINDOW,
    delete_comment,
    edit_comment,
    list_comments,
    post_comment,
    uncount_comments_of_purged,
)
from beatmachine.social.service._follows import (
    PeoplePage,
    Person,
    follow,
    is_following,
    people,
    profile_counts,
    unfollow,
)

__all__ = [
    "COMMENT_CREATE_WINDOW",
    "PeoplePage",
    "Person",
    "delete_comment",
    "edit_comment",
    "follow",
    "is_following",
    "list_comments",
    "people",
    "post_comment",
    "profile_counts",
    "uncount_comments_of_purged",
    "unfollow",
]
