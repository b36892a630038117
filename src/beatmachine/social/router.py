"""HTTP routes of the social domain: comments on patterns, follows, the feed and
notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from beatmachine.auth.dependencies import OPTIONAL_AUTH, CurrentUser, OptionalUser
from beatmachine.core.db import SessionDep
from beatmachine.core.pagination import PageDep
from beatmachine.core.schemas import Envelope, Message, error_responses, ok
from beatmachine.core.state import StateDep
from beatmachine.patterns.views import author_of
from beatmachine.social import service
from beatmachine.social.models import Comment
from beatmachine.social.schemas import (
    AllRead,
    CommentAuthor,
    CommentCreate,
    CommentEdit,
    CommentList,
    CommentOut,
    CommentPosted,
    CommentSort,
    Feed,
    FeedActivity,
    FeedPattern,
    FeedUser,
    FollowList,
    FollowListUser,
    FollowResult,
    NotificationList,
    NotificationOut,
    UnreadCount,
)
from beatmachine.users.models import User

router = APIRouter()


def _out(comment: Comment, author: User) -> CommentOut:
    return CommentOut(
        id=comment.id,
        text=comment.text,
        parent_id=comment.parent_id,
        author=author_of(author),
        created_at=comment.created_at,
        updated_at=comment.updated_at,
        edited_at=comment.edited_at,
    )


@router.get(
    "/patterns/{pattern_id}/comments",
    response_model=Envelope[CommentList],
    responses=error_responses(401, 404),
    openapi_extra=OPTIONAL_AUTH,
    tags=["comments"],
)
async def list_comments(
    pattern_id: str,
    session: SessionDep,
    page: PageDep,
    viewer: OptionalUser,
    sort: Annotated[CommentSort, Query()] = "oldest",
) -> Envelope[CommentList]:
    """The pattern's comments and replies, oldest first (`sort=newest` for the latest
    first); a reply names its thread's first comment in `parentId`."""
    found = await service.list_comments(session, pattern_id, viewer, page, sort)
    return ok(
        CommentList(
            comments=[_out(comment, author) for comment, author in found.rows],
            pagination=found.pagination,
        )
    )


@router.post(
    "/patterns/{pattern_id}/comments",
    status_code=201,
    response_model=Envelope[CommentPosted],
    responses=error_responses(401, 404, 429),
    tags=["comments"],
)
async def post_comment(
    pattern_id: str, body: CommentCreate, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[CommentPosted]:
    """Comment on a pattern, or reply with `parentId` (a reply to a reply joins the same
    thread). The text is plain text: tags are removed."""
    comment = await service.post_comment(session, state, user, pattern_id, body)
    return ok(
        CommentPosted(
            id=comment.id,
            text=comment.text,
            parent_id=comment.parent_id,
            author=CommentAuthor(id=user.id, display_name=user.display_name),
            created_at=comment.created_at,
        )
    )


@router.put(
    "/comments/{comment_id}",
    response_model=Envelope[CommentOut],
    responses=error_responses(401, 403, 404),
    tags=["comments"],
)
async def edit_comment(
    comment_id: str, body: CommentEdit, session: SessionDep, user: CurrentUser
) -> Envelope[CommentOut]:
    """Change one's own comment; `editedAt` then says when."""
    comment = await service.edit_comment(session, user, comment_id, body.text)
    return ok(_out(comment, user))


@router.delete(
    "/comments/{comment_id}",
    response_model=Envelope[Message],
    responses=error_responses(401, 403, 404),
    tags=["comments"],
)
async def delete_comment(
    comment_id: str, session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[Message]:
    """Delete a comment (its author, the pattern's owner or an admin); the first comment
    of a thread takes its replies with it."""
    gone = await service.delete_comment(session, state, user, comment_id)
    return ok(Message(message=_deleted_message(len(gone) - 1)))


def _deleted_message(replies: int) -> str:
    if replies <= 0:
        return "Comment deleted."
    return f"Comment and {replies} {'reply' if replies == 1 else 'replies'} deleted."


@router.post(
    "/users/{user_id}/follow",
    response_model=Envelope[FollowResult],
    responses=error_responses(401, 404),
    tags=["follows"],
)
async def follow_user(
    user_id: str, session: SessionDep, user: CurrentUser
) -> Envelope[FollowResult]:
    """Follow an account (idempotent); not oneself (422)."""
    count = await service.follow(session, user, user_id)
    return ok(FollowResult(following=True, follower_count=count))


@router.delete(
    "/users/{user_id}/follow",
    response_model=Envelope[FollowResult],
    responses=error_responses(401, 404),
    tags=["follows"],
)
async def unfollow_user(
    user_id: str, session: SessionDep, user: CurrentUser
) -> Envelope[FollowResult]:
    """Stop following an account (idempotent)."""
    count = await service.unfollow(session, user, user_id)
    return ok(FollowResult(following=False, follower_count=count))


def _people(found: service.PeoplePage) -> FollowList:
    return FollowList(
        users=[
            FollowListUser(
                id=person.user.id,
                display_name=person.user.display_name,
                avatar=person.user.avatar,
                is_followed_by_current_user=person.followed_by_viewer,
            )
            for person in found.people
        ],
        pagination=found.pagination,
    )


@router.get(
    "/users/{user_id}/followers",
    response_model=Envelope[FollowList],
    responses=error_responses(401, 404),
    openapi_extra=OPTIONAL_AUTH,
    tags=["follows"],
)
async def list_followers(
    user_id: str, session: SessionDep, page: PageDep, viewer: OptionalUser
) -> Envelope[FollowList]:
    """Who follows the account, the latest first."""
    return ok(_people(await service.people(session, user_id, viewer, page, followers=True)))


@router.get(
    "/users/{user_id}/following",
    response_model=Envelope[FollowList],
    responses=error_responses(401, 404),
    openapi_extra=OPTIONAL_AUTH,
    tags=["follows"],
)
async def list_following(
    user_id: str, session: SessionDep, page: PageDep, viewer: OptionalUser
) -> Envelope[FollowList]:
    """Whom the account follows, the latest first."""
    return ok(_people(await service.people(session, user_id, viewer, page, followers=False)))


def _activity(row: service.FeedRow) -> FeedActivity:
    activity = row.activity
    return FeedActivity(
        id=activity.id,
        type=service.ActivityType(activity.type).value,
        user=FeedUser(id=activity.actor_id, display_name=row.actor_name),
        pattern=(
            FeedPattern(id=activity.pattern_id, title=row.pattern_title)
            if activity.pattern_id is not None and row.pattern_title is not None
            else None
        ),
        followed_user=(
            FeedUser(id=activity.subject_id, display_name=row.subject_name)
            if activity.subject_id is not None and row.subject_name is not None
            else None
        ),
        comment_id=activity.comment_id,
        created_at=activity.created_at,
    )


@router.get(
    "/feed",
    response_model=Envelope[Feed],
    responses=error_responses(401, 422),
    tags=["feed"],
)
async def read_feed(
    session: SessionDep, state: StateDep, page: PageDep, user: CurrentUser
) -> Envelope[Feed]:
    """What the people the caller follows did, newest first: patterns they created or
    liked, people they followed, comments they wrote. Private patterns of others never
    show; an activity whose pattern was deleted or made private, or whose like or
    follow was taken back, no longer shows; nor do those of people no longer followed."""
    found = await service.feed(session, state, user, page)
    return ok(Feed(activities=[_activity(row) for row in found.rows], pagination=found.pagination))


def _notification(row: service.NotificationRow) -> NotificationOut:
    notification = row.notification
    return NotificationOut(
        id=notification.id,
        type=service.NotificationType(notification.type).value,
        actor=author_of(row.actor),
        pattern=(
            FeedPattern(id=notification.pattern_id, title=row.pattern_title)
            if notification.pattern_id is not None and row.pattern_title is not None
            else None
        ),
        comment_id=notification.comment_id,
        read=notification.read_at is not None,
        read_at=notification.read_at,
        created_at=notification.created_at,
    )


@router.get(
    "/notifications",
    response_model=Envelope[NotificationList],
    responses=error_responses(401, 422),
    tags=["notifications"],
)
async def list_notifications(
    session: SessionDep,
    page: PageDep,
    user: CurrentUser,
    unread: Annotated[bool, Query(description="only the unread ones")] = False,
) -> Envelope[NotificationList]:
    """The caller's notifications, newest first (`unread=true`: only unread ones), with
    the number still unread: likes and comments on their patterns, replies to their
    comments, new followers."""
    found = await service.notifications(session, user, page, unread_only=unread)
    return ok(
        NotificationList(
            notifications=[_notification(row) for row in found.rows],
            unread_count=found.unread,
            pagination=found.pagination,
        )
    )


@router.get(
    "/notifications/unread-count",
    response_model=Envelope[UnreadCount],
    responses=error_responses(401),
    tags=["notifications"],
)
async def count_unread_notifications(
    session: SessionDep, user: CurrentUser
) -> Envelope[UnreadCount]:
    """How many of the caller's notifications are unread (for a badge)."""
    return ok(UnreadCount(unread_count=await service.unread_count(session, user)))


@router.post(
    "/notifications/read-all",
    response_model=Envelope[AllRead],
    responses=error_responses(401),
    tags=["notifications"],
)
async def mark_all_notifications_read(session: SessionDep, user: CurrentUser) -> Envelope[AllRead]:
    """Mark every notification of the caller read; `updated` says how many were unread."""
    updated = await service.mark_all_read(session, user)
    return ok(AllRead(updated=updated, unread_count=0))


@router.post(
    "/notifications/{notification_id}/read",
    response_model=Envelope[NotificationOut],
    responses=error_responses(401, 404),
    tags=["notifications"],
)
async def mark_notification_read(
    notification_id: str, session: SessionDep, user: CurrentUser
) -> Envelope[NotificationOut]:
    """Mark one of the caller's notifications read (idempotent: the first reading time
    stays). Someone else's is 404 `NOTIFICATION_NOT_FOUND`, like an unknown id."""
    return ok(_notification(await service.mark_read(session, user, notification_id)))
