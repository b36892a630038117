"""How the analytics domain attaches to an app instance: its listeners on the events of
patterns and users, and its periodic jobs."""

from __future__ import annotations

from beatmachine.analytics import jobs, listeners
from beatmachine.core.state import AppState


def setup(state: AppState) -> None:
    """Register the listeners that record usage, the rollup and the prune."""
    listeners.register(state)
    jobs.register(state)
