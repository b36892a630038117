"""The one router registry: every domain's router under `/api`, and what domains
attach to the app (periodic jobs, extensions)."""

from __future__ import annotations

from fastapi import APIRouter

from beatmachine.auth import jobs as auth_jobs
from beatmachine.auth import router as auth_router
from beatmachine.auth.oauth import OAuthVerifier
from beatmachine.core.state import AppState
from beatmachine.users import router as users_router

router = APIRouter(prefix="/api")
router.include_router(auth_router.router)
router.include_router(users_router.router)


def register_extensions(state: AppState) -> None:
    """Attach each domain's long-lived services and periodic jobs to an app instance."""
    verifier = OAuthVerifier(state.settings)
    state.extensions[auth_router.OAUTH_VERIFIER] = verifier
    state.on_shutdown.append(verifier.aclose)
    for job in auth_jobs.periodic_jobs(state):
        state.scheduler.add(job)
