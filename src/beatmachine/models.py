"""Every domain's tables, for Alembic and start-up. Imports only."""

from beatmachine.auth.models import AuthSession, OAuthAccount, OneTimeToken, RefreshToken
from beatmachine.core.db import Base
from beatmachine.machines.models import Machine, MachineVersion
from beatmachine.patterns.models import (
    Pattern,
    PatternLike,
    PatternVersion,
    ShareLink,
    is_search_object,
)
from beatmachine.users.models import User, UserPreferences

__all__ = [
    "AuthSession",
    "Base",
    "Machine",
    "MachineVersion",
    "OAuthAccount",
    "OneTimeToken",
    "Pattern",
    "PatternLike",
    "PatternVersion",
    "RefreshToken",
    "ShareLink",
    "User",
    "UserPreferences",
    "is_search_object",
]
