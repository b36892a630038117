"""The social domain's logic, one concern per module: comments and follows (the feed
and notifications join them)."""

from beatmachine.social.repository import FeedRow
from beatmachine.social.service._comments import (
    COMMENT_CREATE_WINDOW,
    delete_comment,
    edit_comment,
    list_comments,
    post_comment,
    uncount_comments_of_purged,
)
from beatmachine.social.service._feed import (
    FAN_OUT_JOB,
    ActivityRefs,
    ActivityType,
    FeedPage,
    bring_into_feed,
    fan_out_batch,
    feed,
    prune_activities,
    record_activity,
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
    "FAN_OUT_JOB",
    "ActivityRefs",
    "ActivityType",
    "FeedPage",
    "FeedRow",
    "PeoplePage",
    "Person",
    "bring_into_feed",
    "delete_comment",
    "edit_comment",
    "fan_out_batch",
    "feed",
    "follow",
    "is_following",
    "list_comments",
    "people",
    "post_comment",
    "profile_counts",
    "prune_activities",
    "record_activity",
    "uncount_comments_of_purged",
    "unfollow",
]
