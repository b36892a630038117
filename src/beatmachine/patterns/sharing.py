"""Share links: a public pattern's link on the front end, and unlisted links that open
a private pattern read-only without an account."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.config import Settings
from beatmachine.core.ids import new_id, utcnow
from beatmachine.patterns import service
from beatmachine.patterns.exceptions import NotPatternOwner, PatternNotFound, ShareLinkNotFound
from beatmachine.patterns.models import Pattern, ShareLink
from beatmachine.users.models import User

MAX_ACTIVE_LINKS = 20


def public_url(settings: Settings, pattern: Pattern) -> str | None:
    """Where the front end shows a public pattern; private patterns have none."""
    if not pattern.is_public:
        return None
    return f"{settings.app_url.rstrip('/')}/patterns/{pattern.id}"


def link_url(settings: Settings, link: ShareLink) -> str:
    """Where an unlisted link opens on the front end."""
    return f"{settings.app_url.rstrip('/')}/shared/{link.token}"


async def create_link(session: AsyncSession, user: User, pattern_id: str) -> ShareLink:
    """A new unlisted link to the owner's pattern (the oldest of too many is revoked)."""
    pattern = await service.get_owned(session, pattern_id, user)
    active = await list_links(session, user, pattern.id)
    if len(active) >= MAX_ACTIVE_LINKS:
        # Revoke the oldest rather than refuse: links are cheap to make again.
        active[-1].revoked_at = utcnow()
    link = ShareLink(id=new_id("shl"), pattern_id=pattern.id, token=secrets.token_urlsafe(24))
    session.add(link)
    await session.flush()
    return link


async def list_links(session: AsyncSession, user: User, pattern_id: str) -> list[ShareLink]:
    """The active links of the owner's pattern, newest first."""
    pattern = await service.get_live(session, pattern_id)
    if pattern.user_id != user.id:
        # As everywhere: someone else's public pattern is forbidden, a private one unknown.
        raise NotPatternOwner() if pattern.is_public else PatternNotFound()
    rows: Sequence[ShareLink] = (
        (
            await session.execute(
                select(ShareLink)
                .where(ShareLink.pattern_id == pattern_id, ShareLink.revoked_at.is_(None))
                .order_by(ShareLink.created_at.desc(), ShareLink.id.desc())
            )
        )
        .scalars()
        .all()
    )
    return list(rows)


async def revoke_link(session: AsyncSession, user: User, pattern_id: str, link_id: str) -> None:
    """Make one of the owner's links stop opening the pattern."""
    await service.get_owned(session, pattern_id, user)
    link = await session.get(ShareLink, link_id)
    if link is None or link.pattern_id != pattern_id or link.revoked_at is not None:
        raise ShareLinkNotFound()
    link.revoked_at = utcnow()


async def open_link(session: AsyncSession, token: str) -> Pattern:
    """The pattern behind an active link (read-only), whatever its visibility."""
    link = (
        await session.execute(select(ShareLink).where(ShareLink.token == token))
    ).scalar_one_or_none()
    if link is None or link.revoked_at is not None:
        raise ShareLinkNotFound()
    pattern = await session.get(Pattern, link.pattern_id)
    if pattern is None or pattern.deleted_at is not None:
        raise ShareLinkNotFound()
    return pattern
