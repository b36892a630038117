"""Request and response models of the social domain."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from beatmachine.core.pagination import Pagination
from beatmachine.core.schemas import CamelModel, RequestModel, Timestamp
from beatmachine.patterns.schemas import Author
from beatmachine.users.schemas import plain_text

COMMENT_MAX = 5000
# Control characters but newline and tab (C0, DEL, C1): refused, never stored.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _line_ends(value: object) -> object:
    # A browser's textarea may send CRLF line ends: kept as plain newlines.
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters other than newline and tab")
    return value


def _not_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty or only markup")
    return value


CommentText = Annotated[
    str,
    BeforeValidator(_line_ends),
    StringConstraints(min_length=1, max_length=COMMENT_MAX),
    Field(json_schema_extra={"pattern": r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$"}),
    AfterValidator(_no_control_characters),
    AfterValidator(plain_text),
    # Again once entities are decoded: `&#7;` must not smuggle in what `\x07` cannot.
    AfterValidator(_no_control_characters),
    AfterValidator(_not_empty),
]
CommentSort = Literal["oldest", "newest"]


class CommentCreate(RequestModel):
    """A comment, or with `parentId` a reply in that comment's thread."""

    text: CommentText
    parent_id: Annotated[str, StringConstraints(max_length=32)] | None = None


class CommentEdit(RequestModel):
    text: CommentText


class CommentAuthor(CamelModel):
    id: str
    display_name: str


class CommentOut(CamelModel):
    id: str
    text: str
    parent_id: str | None
    author: Author
    created_at: Timestamp
    updated_at: Timestamp
    edited_at: Timestamp | None


class CommentPosted(CamelModel):
    id: str
    text: str
    parent_id: str | None
    author: CommentAuthor
    created_at: Timestamp


class CommentList(CamelModel):
    comments: list[CommentOut]
    pagination: Pagination


class FollowResult(CamelModel):
    following: bool
    follower_count: int


class FollowListUser(CamelModel):
    id: str
    display_name: str
    avatar: str | None
    is_followed_by_current_user: bool


class FollowList(CamelModel):
    users: list[FollowListUser]
    pagination: Pagination


class FeedUser(CamelModel):
    id: str
    display_name: str


class FeedPattern(CamelModel):
    id: str
    title: str


class FeedActivity(CamelModel):
    """One thing a followed person did. `pattern` is null for `user_followed`, which
    names the person followed in `followedUser`; `commentId` is set for
    `comment_created`."""

    id: str
    type: Literal["pattern_created", "pattern_liked", "user_followed", "comment_created"]
    user: FeedUser
    pattern: FeedPattern | None
    followed_user: FeedUser | None
    comment_id: str | None
    created_at: Timestamp


class Feed(CamelModel):
    activities: list[FeedActivity]
    pagination: Pagination


class NotificationOut(CamelModel):
    """Something that happened to the caller's work or to them. `pattern` is null for
    `user_followed`, and when the pattern is gone or no longer visible to the caller."""

    id: str
    type: Literal["pattern_liked", "pattern_commented", "comment_replied", "user_followed"]
    actor: Author
    pattern: FeedPattern | None
    comment_id: str | None
    read: bool
    read_at: Timestamp | None
    created_at: Timestamp


class NotificationList(CamelModel):
    notifications: list[NotificationOut]
    unread_count: int
    pagination: Pagination


class UnreadCount(CamelModel):
    unread_count: int


class AllRead(CamelModel):
    updated: int
    unread_count: int
