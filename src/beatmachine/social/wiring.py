"""How the social domain attaches to an app instance."""

from __future__ import annotations

from functools import partial

from beatmachine.core.state import AppState
from beatmachine.social import service


def setup(state: AppState) -> None:
    """Keep comment counts exact when the accounts that wrote comments are purged."""
    state.before_account_purge.append(partial(service.uncount_comments_of_purged, state))
