"""Response shapes of patterns, built from rows (shared by the pattern routers)."""

from __future__ import annotations

from beatmachine.core.config import Settings
from beatmachine.patterns import sharing
from beatmachine.patterns.models import Pattern
from beatmachine.patterns.schemas import (
    Author,
    ConfigurationOut,
    ListStats,
    PatternListItem,
    PatternOut,
    PatternStats,
    PatternUpdated,
)
from beatmachine.users.models import User


def author_of(user: User) -> Author:
    return Author(id=user.id, display_name=user.display_name, avatar=user.avatar)


def updated(pattern: Pattern) -> PatternUpdated:
    """The answer to a change that makes a new version (update, restore)."""
    return PatternUpdated(
        id=pattern.id, title=pattern.title, version=pattern.version, updated_at=pattern.updated_at
    )


def list_item(pattern: Pattern, author: User) -> PatternListItem:
    return PatternListItem(
        id=pattern.id,
        title=pattern.title,
        description=pattern.description,
        flavor=pattern.flavor,
        bpm=pattern.bpm,
        key_note=pattern.key_note,
        is_public=pattern.is_public,
        thumbnail=pattern.thumbnail,
        author=author_of(author),
        stats=ListStats(
            plays=pattern.plays_count,
            likes=pattern.likes_count,
            comments=pattern.comments_count,
            forks=pattern.forks_count,
        ),
        original_id=pattern.original_id,
        created_at=pattern.created_at,
        updated_at=pattern.updated_at,
    )


def full(pattern: Pattern, author: User, liked: bool, settings: Settings) -> PatternOut:
    item = list_item(pattern, author)
    return PatternOut(
        **item.model_dump(exclude={"stats"}),
        stats=PatternStats(**item.stats.model_dump(), is_liked_by_current_user=liked),
        configuration=ConfigurationOut.model_validate(pattern.configuration),
        machine_id=pattern.machine_id,
        machine_version=pattern.machine_version,
        version=pattern.version,
        share_url=sharing.public_url(settings, pattern),
    )
