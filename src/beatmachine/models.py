"""Every domain's tables, for Alembic and start-up. Imports only."""

from beatmachine.analytics.models import (
    ActiveDay,
    Rollup,
    RollupState,
    TrendingPattern,
    UsageEvent,
    UsageEventInstrument,
)
from beatmachine.auth.models import AuthSession, OAuthAccount, OneTimeToken, RefreshToken
from beatmachine.core.db import Base
from beatmachine.core.events import EventDelivery
from beatmachine.core.jobs.leases import JobLease
from beatmachine.core.jobs.models import FailedJob, QueuedJob
from beatmachine.core.outbox import OutboxMessage
from beatmachine.machines.models import Machine, MachineVersion
from beatmachine.media.models import Sample
from beatmachine.patterns.models import (
    Pattern,
    PatternLike,
    PatternVersion,
    ShareLink,
    is_search_object,
)
from beatmachine.social.models import Comment, Follow
from beatmachine.users.models import User, UserPreferences
from beatmachine.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ActiveDay",
    "AuthSession",
    "Base",
    "Comment",
    "EventDelivery",
    "FailedJob",
    "Follow",
    "JobLease",
    "Machine",
    "MachineVersion",
    "OAuthAccount",
    "OneTimeToken",
    "OutboxMessage",
    "Pattern",
    "PatternLike",
    "PatternVersion",
    "QueuedJob",
    "RefreshToken",
    "Rollup",
    "RollupState",
    "Sample",
    "ShareLink",
    "TrendingPattern",
    "UsageEvent",
    "UsageEventInstrument",
    "User",
    "UserPreferences",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "is_search_object",
]
