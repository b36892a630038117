"""What happens to accounts, for the domains after this one to react to."""

from __future__ import annotations

from datetime import date

from beatmachine.core.events import DomainEvent


class UserRegistered(DomainEvent):
    """A new account; `method` is `password` or the OAuth provider it came with."""

    name = "user.registered"
    user_id: str
    method: str


class UserActive(DomainEvent):
    """The account was used on `day` (UTC): recorded at sign-in and at a session's first
    use of a day, so there may be several a day (daily-active counts dedupe by user)."""

    name = "user.active"
    user_id: str
    day: date
