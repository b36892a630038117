"""How the social domain attaches to an app instance: the follow counts and relation it
gives profiles, the comment counts it keeps exact when accounts are purged, the listeners
that feed the activity feed and its jobs."""

from __future__ import annotations

from functools import partial

from beatmachine.core.state import AppState
from beatmachine.social import jobs, listeners, service


def setup(state: AppState) -> None:
    """Register the follow counts and check on profiles, the purge hook, the listeners
    and the jobs."""
    state.profile_counts.append(service.profile_counts)
    state.is_following = service.is_following
    state.before_account_purge.append(partial(service.uncount_comments_of_purged, state))
    listeners.register(state)
    jobs.register(state)
