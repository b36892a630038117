"""Every domain's wiring, in the domain order (machines < users < auth < patterns < social <
analytics, webhooks, media).

API and worker processes both call `setup`; it imports no router, so a worker never
loads the HTTP layer.
"""

from __future__ import annotations

from beatmachine.analytics import wiring as analytics_wiring
from beatmachine.auth import wiring as auth_wiring
from beatmachine.core.state import AppState
from beatmachine.machines import wiring as machines_wiring
from beatmachine.media import wiring as media_wiring
from beatmachine.patterns import wiring as patterns_wiring
from beatmachine.social import wiring as social_wiring
from beatmachine.users import wiring as users_wiring
from beatmachine.webhooks import wiring as webhooks_wiring

DOMAINS = (
    machines_wiring,
    users_wiring,
    auth_wiring,
    patterns_wiring,
    social_wiring,
    analytics_wiring,
    webhooks_wiring,
    media_wiring,
)


def setup(state: AppState) -> None:
    """Let each domain attach its jobs, listeners, start-up work and stats."""
    for domain in DOMAINS:
        domain.setup(state)
