"""Comments on patterns: a thread is a first comment and its replies (one level)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core import events
from beatmachine.core.ids import new_id, utcnow
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.core.state import AppState
from beatmachine.patterns import service as patterns_service
from beatmachine.patterns.models import Pattern
from beatmachine.social import repository
from beatmachine.social.events import CommentCreated, CommentDeleted
from beatmachine.social.exceptions import CommentNotFound, MayNotDeleteComment, NotCommentAuthor
from beatmachine.social.models import Comment
from beatmachine.social.schemas import CommentCreate, CommentSort
from beatmachine.users import service as users_service
from beatmachine.users.models import User

COMMENT_CREATE_WINDOW = 3600


@dataclass(frozen=True)
class CommentPage:
    rows: list[tuple[Comment, User]]
    pagination: Pagination


async def list_comments(
    session: AsyncSession,
    pattern_id: str,
    viewer: User | None,
    params: PageParams,
    sort: CommentSort,
) -> CommentPage:
    """A page of the comments of a pattern the viewer may see, with their authors."""
    pattern = await patterns_service.get_visible(session, pattern_id, viewer)
    rows, pagination = await repository.comments_page(
        session, pattern.id, params, newest_first=sort == "newest"
    )
    return CommentPage(rows, pagination)


async def _check_create_limit(state: AppState, user: User) -> None:
    await state.limiter.enforce(
        "comment-create",
        user.id,
        limit=state.settings.rate_limit_comment_create,
        window=COMMENT_CREATE_WINDOW,
        message="You have posted too many comments this hour; try again later.",
    )


async def post_comment(
    session: AsyncSession, state: AppState, user: User, pattern_id: str, body: CommentCreate
) -> Comment:
    """Comment on a pattern the caller may see; with `parent_id`, reply in that comment's
    thread (a reply to a reply joins the same thread). Counts against the hourly limit."""
    pattern = await patterns_service.get_visible(session, pattern_id, user)
    thread: Comment | None = None
    parent: Comment | None = None
    if body.parent_id is not None:
        parent = await _live_comment(session, body.parent_id)
        if parent is None or parent.pattern_id != pattern.id:
            raise CommentNotFound("The comment replied to is not on this pattern.")
        thread = (
            parent if parent.parent_id is None else await _live_comment(session, parent.parent_id)
        )
        if thread is None:  # its thread was deleted a moment ago
            raise CommentNotFound("The comment replied to is not on this pattern.")
    await _check_create_limit(state, user)
    now = utcnow()
    comment = Comment(
        id=new_id("cmt"),
        pattern_id=pattern.id,
        user_id=user.id,
        parent_id=thread.id if thread is not None else None,
        text=body.text,
        created_at=now,
        updated_at=now,
    )
    session.add(comment)
    await session.flush()
    await patterns_service.count_comments(session, state, pattern, 1)
    events.record(
        session,
        CommentCreated(
            comment_id=comment.id,
            pattern_id=pattern.id,
            owner_id=pattern.user_id,
            user_id=user.id,
            parent_id=comment.parent_id,
            parent_author_id=thread.user_id if thread is not None else None,
            replied_to_id=parent.id if parent is not None else None,
            replied_to_author_id=parent.user_id if parent is not None else None,
            is_public=pattern.is_public,
        ),
    )
    return comment


async def _live_comment(session: AsyncSession, comment_id: str) -> Comment | None:
    # FOR KEY SHARE on PostgreSQL: a thread being deleted waits for the reply to commit
    # (and takes it along), or is gone first and the reply is a clean 404, never a
    # foreign-key error.
    return await session.get(Comment, comment_id, with_for_update={"key_share": True})


async def _comment_and_pattern(
    session: AsyncSession, comment_id: str, viewer: User, *, as_admin: bool = False
) -> tuple[Comment, Pattern]:
    comment = await session.get(Comment, comment_id, with_for_update=True)
    if comment is None:
        raise CommentNotFound()
    # A comment is only reachable through its pattern: one the caller cannot see (deleted,
    # or someone else's private one) hides it. An admin sees every live pattern.
    if as_admin:
        pattern = await patterns_service.get_live(session, comment.pattern_id)
    else:
        pattern = await patterns_service.get_visible(session, comment.pattern_id, viewer)
    return comment, pattern


async def edit_comment(session: AsyncSession, user: User, comment_id: str, text: str) -> Comment:
    """Change the text of one's own comment; it then shows when it was edited."""
    comment, _pattern = await _comment_and_pattern(session, comment_id, user)
    if comment.user_id != user.id:
        raise NotCommentAuthor()
    if text != comment.text:
        now = utcnow()
        comment.text = text
        comment.edited_at = now
        comment.updated_at = now
        await session.flush()
    return comment


async def delete_comment(
    session: AsyncSession, state: AppState, user: User, comment_id: str
) -> list[str]:
    """Delete a comment (its author, the pattern's owner or an admin); the first comment
    of a thread takes its replies with it. Returns the ids deleted."""
    admin = users_service.is_admin(user, state.settings)
    comment, pattern = await _comment_and_pattern(session, comment_id, user, as_admin=admin)
    if user.id not in (comment.user_id, pattern.user_id) and not admin:
        raise MayNotDeleteComment()
    gone = await repository.delete_thread(session, comment)
    if not gone:  # deleted by someone else a moment ago
        raise CommentNotFound()
    await patterns_service.count_comments(session, state, pattern, -len(gone))
    events.record(session, CommentDeleted(comment_ids=gone, pattern_id=pattern.id))
    return gone


async def uncount_comments_of_purged(
    state: AppState, session: AsyncSession, user_ids: list[str]
) -> None:
    """Before accounts are purged (their comments go with them): take those comments,
    and the replies of the threads they opened, off the patterns' comment counts."""
    await patterns_service.uncount_comments(
        session, state, await repository.comments_left_by(session, user_ids)
    )
