"""The social domain's logic, one concern per module: comments, follows, the feed and
notifications."""

from beatmachine.social.repository import FeedRow, NotificationRow
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
from beatmachine.social.service._notifications import (
    EMAIL_JOB,
    NotificationPage,
    NotificationType,
    mark_all_read,
    mark_read,
    notifications,
    notify,
    send_email,
    unread_count,
)

__all__ = [
    "COMMENT_CREATE_WINDOW",
    "EMAIL_JOB",
    "FAN_OUT_JOB",
    "ActivityRefs",
    "ActivityType",
    "FeedPage",
    "FeedRow",
    "NotificationPage",
    "NotificationRow",
    "NotificationType",
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
    "mark_all_read",
    "mark_read",
    "notifications",
    "notify",
    "people",
    "post_comment",
    "profile_counts",
    "prune_activities",
    "record_activity",
    "send_email",
    "uncount_comments_of_purged",
    "unfollow",
    "unread_count",
]
