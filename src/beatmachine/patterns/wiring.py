"""How the patterns domain attaches to an app instance: the purge of deleted patterns
and the profile counts it owns."""

from __future__ import annotations

from beatmachine.core.state import AppState
from beatmachine.patterns import jobs, stats


def setup(state: AppState) -> None:
    """Register the periodic purge and the patterns' profile counts."""
    for job in jobs.periodic_jobs(state):
        state.scheduler.add(job)
    state.profile_counts.append(stats.profile_counts)
