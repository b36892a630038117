"""Queries of the social domain, one module per concern: comments and follows (the
social graph) and the feed."""

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

__all__ = [
    "FeedRow",
    "FollowerCursor",
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
    "people_page",
    "prune_activities",
    "remove_follow",
]
