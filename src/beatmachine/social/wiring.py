"""How the social domain attaches to an app instance: the follow counts and relation it
gives profiles, and the comment counts it keeps exact when accounts are purged."""

from __future__ import annotations

from functools import partial

from beatmachine.core.state import AppState
from beatmachine.social import service


def setup(state: AppState) -> None:
    """Register the follow counts and check on profiles, and the purge hook."""
    state.profile_counts.append(service.profile_counts)
    state.is_following = service.is_following
    state.before_account_purge.append(partial(service.uncount_comments_of_purged, state))
