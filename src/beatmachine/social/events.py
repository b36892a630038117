"""What happens in the social domain, for the domains after it (analytics, webhooks) and
its own listeners (feed, notifications). Recorded inside the transaction of the change."""

from __future__ import annotations

from beatmachine.core.events import DomainEvent


class CommentCreated(DomainEvent):
    """A new comment, or a reply: `parent_id` and `parent_author_id` name the thread's
    first comment and its author, `replied_to_id` and `replied_to_author_id` the comment
    answered (the same, or a reply in that thread)."""

    name = "comment.created"
    comment_id: str
    pattern_id: str
    owner_id: str
    user_id: str
    parent_id: str | None
    parent_author_id: str | None
    replied_to_id: str | None
    replied_to_author_id: str | None
    is_public: bool


class CommentDeleted(DomainEvent):
    """A comment removed, with the replies of its thread when it was the first."""

    name = "comment.deleted"
    comment_ids: list[str]
    pattern_id: str


class UserFollowed(DomainEvent):
    """`follower_id` started following `followee_id` (a repeated follow records nothing)."""

    name = "user.followed"
    follower_id: str
    followee_id: str


class UserUnfollowed(DomainEvent):
    """`follower_id` stopped following `followee_id`."""

    name = "user.unfollowed"
    follower_id: str
    followee_id: str
