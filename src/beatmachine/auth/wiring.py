"""How the auth domain attaches to an app instance: the OAuth verifier and the purge
of accounts whose deletion grace period is over."""

from __future__ import annotations

from beatmachine.auth import jobs
from beatmachine.auth.oauth import OAUTH_VERIFIER, OAuthVerifier
from beatmachine.core.state import AppState


def setup(state: AppState) -> None:
    """Attach the OAuth verifier (closed at shutdown) and the periodic account purge."""
    verifier = OAuthVerifier(state.settings)
    state.extensions[OAUTH_VERIFIER] = verifier
    state.on_shutdown.append(verifier.aclose)
    for job in jobs.periodic_jobs(state):
        state.scheduler.add(job)
