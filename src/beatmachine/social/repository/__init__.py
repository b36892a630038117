"""Queries of the social domain, one module per concern: comments and follows (the
social graph), the feed and notifications."""

from beatmachine.social.repository._feed import (
    FeedRow,
    FollowerCursor,
    backfill,
    fan_out,
    fan_out_boundaries,
    feed_page,
    prune_activities,
)
from beatmachine.social.repository._graph import (
    add_follow,
    comments_left_by,
    comments_page,
    delete_thread,
    followed_among,
    follower_count,
    following_count,
    people_page,
    remove_follow,
)
from beatmachine.social.repository._notifications import (
    NotificationRow,
    has_unread_same,
    mark_all_read,
    mark_read,
    notifications_page,
    schedule_digest,
    take_digest,
    take_pending_email,
    unread_count,
)

__all__ = [
    "FeedRow",
    "FollowerCursor",
    "NotificationRow",
    "add_follow",
    "backfill",
    "comments_left_by",
    "comments_page",
    "delete_thread",
    "fan_out",
    "fan_out_boundaries",
    "feed_page",
    "followed_among",
    "follower_count",
    "following_count",
    "has_unread_same",
    "mark_all_read",
    "mark_read",
    "notifications_page",
    "people_page",
    "prune_activities",
    "remove_follow",
    "schedule_digest",
    "take_digest",
    "take_pending_email",
    "unread_count",
]
