"""What happens to patterns, for the domains after this one (social, analytics, webhooks)
to react to. Recorded by the patterns services inside the transaction of the change."""

from __future__ import annotations

from beatmachine.core.events import DomainEvent


class PatternEvent(DomainEvent):
    """Every pattern event names the pattern and its owner."""

    pattern_id: str
    owner_id: str


class PatternCreated(PatternEvent):
    """A new pattern (a fork too, which also records `PatternForked`)."""

    name = "pattern.created"
    title: str
    flavor: str
    bpm: int
    key_note: int
    is_public: bool
    instruments: list[str]
    original_id: str | None


class PatternUpdated(PatternEvent):
    """An edit or a restored version: the state after it, and which fields changed."""

    name = "pattern.updated"
    version: int
    changed: list[str]
    title: str
    flavor: str
    bpm: int
    key_note: int
    is_public: bool
    instruments: list[str]


class PatternDeleted(PatternEvent):
    """Moved to the bin (restorable for 7 days)."""

    name = "pattern.deleted"


class PatternRestored(PatternEvent):
    """Taken back out of the bin."""

    name = "pattern.restored"
    is_public: bool


class PatternPlayed(PatternEvent):
    """A play; `player_id` is None for an anonymous listener."""

    name = "pattern.played"
    player_id: str | None


class PatternLiked(PatternEvent):
    """A like that was not there before (liking twice records one)."""

    name = "pattern.liked"
    user_id: str


class PatternUnliked(PatternEvent):
    """A like taken back (unliking what was not liked records nothing)."""

    name = "pattern.unliked"
    user_id: str


class PatternForked(PatternEvent):
    """`user_id` copied the pattern into `fork_id`."""

    name = "pattern.forked"
    fork_id: str
    user_id: str
