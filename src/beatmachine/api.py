"""The one router registry: every domain's router under `/api`, and what domains
attach to the app (start-up work, periodic jobs, extensions)."""

from __future__ import annotations

from fastapi import APIRouter

from beatmachine.auth import jobs as auth_jobs
from beatmachine.auth import router as auth_router
from beatmachine.auth.oauth import OAuthVerifier
from beatmachine.core.state import AppState
from beatmachine.machines import bootstrap as machines_bootstrap
from beatmachine.machines import router as machines_router
from beatmachine.patterns import jobs as patterns_jobs
from beatmachine.patterns import router as patterns_router
from beatmachine.patterns import routes_history as patterns_history
from beatmachine.patterns import stats as patterns_stats
from beatmachine.users import router as users_router
from beatmachine.users import service as users_service

router = APIRouter(prefix="/api")
router.include_router(auth_router.router)
router.include_router(users_router.router)
router.include_router(machines_router.router)
router.include_router(patterns_router.router)
router.include_router(patterns_history.router)
router.include_router(patterns_history.shared_router)

# Paths that accept request bodies other than JSON.
EXTRA_BODY_TYPES: dict[str, tuple[str, ...]] = {
    path: ("application/xml", "text/xml")
    for path in (*machines_router.XML_BODY_PATHS, *patterns_router.XML_BODY_PATHS)
}


def register_extensions(state: AppState) -> None:
    """Attach each domain's long-lived services, start-up work and periodic jobs."""
    verifier = OAuthVerifier(state.settings)
    state.extensions[auth_router.OAUTH_VERIFIER] = verifier
    state.on_shutdown.append(verifier.aclose)

    async def install_machines() -> None:
        await machines_bootstrap.install_machines(state)

    state.on_startup.append(install_machines)
    for job in [*auth_jobs.periodic_jobs(state), *patterns_jobs.periodic_jobs(state)]:
        state.scheduler.add(job)
    users_service.register_stats_provider(patterns_stats.profile_counts)
