"""Follows: who follows whom, idempotent both ways, counted exactly."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core import events
from beatmachine.core.pagination import PageParams, Pagination
from beatmachine.social import repository
from beatmachine.social.events import UserFollowed, UserUnfollowed
from beatmachine.social.exceptions import CannotFollowYourself
from beatmachine.users import service as users_service
from beatmachine.users.models import User


@dataclass(frozen=True)
class Person:
    user: User
    followed_by_viewer: bool


@dataclass(frozen=True)
class PeoplePage:
    people: list[Person]
    pagination: Pagination


async def follow(session: AsyncSession, follower: User, user_id: str) -> int:
    """Follow an active account (idempotent: one row however often); returns its
    follower count. Following oneself is `CannotFollowYourself`."""
    followee = await users_service.get_user(session, user_id)
    if followee.id == follower.id:
        raise CannotFollowYourself()
    if await repository.add_follow(session, follower.id, followee.id):
        events.record(session, UserFollowed(follower_id=follower.id, followee_id=followee.id))
    return await repository.follower_count(session, followee.id)


async def unfollow(session: AsyncSession, follower: User, user_id: str) -> int:
    """Stop following (idempotent); returns the account's follower count."""
    followee = await users_service.get_user(session, user_id)
    if await repository.remove_follow(session, follower.id, followee.id):
        events.record(session, UserUnfollowed(follower_id=follower.id, followee_id=followee.id))
    return await repository.follower_count(session, followee.id)


async def people(
    session: AsyncSession,
    user_id: str,
    viewer: User | None,
    params: PageParams,
    *,
    followers: bool,
) -> PeoplePage:
    """A page of an account's followers (or of whom it follows), newest first, each with
    whether the viewer follows them (one query for the whole page)."""
    user = await users_service.get_user(session, user_id)
    users, pagination = await repository.people_page(session, user.id, params, followers=followers)
    followed = (
        await repository.followed_among(session, viewer.id, [u.id for u in users])
        if viewer is not None
        else set()
    )
    return PeoplePage([Person(u, u.id in followed) for u in users], pagination)


async def is_following(session: AsyncSession, viewer_id: str, user_id: str) -> bool:
    """Whether `viewer_id` follows `user_id`."""
    return bool(await repository.followed_among(session, viewer_id, [user_id]))


async def profile_counts(session: AsyncSession, user_id: str) -> dict[str, int]:
    """The profile counts of follows: followers and following."""
    return {
        "followers": await repository.follower_count(session, user_id),
        "following": await repository.following_count(session, user_id),
    }
