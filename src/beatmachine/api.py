"""The one router registry: every domain's router under `/api`."""

from __future__ import annotations

from fastapi import APIRouter

from beatmachine.admin import router as admin_router
from beatmachine.analytics import pages as analytics_pages
from beatmachine.analytics import router as analytics_router
from beatmachine.auth import router as auth_router
from beatmachine.core.config import Settings
from beatmachine.core.uploads import MULTIPART_TYPE
from beatmachine.machines import router as machines_router
from beatmachine.media import router as media_router
from beatmachine.patterns import router as patterns_router
from beatmachine.patterns import routes_history as patterns_history
from beatmachine.social import router as social_router
from beatmachine.users import router as users_router
from beatmachine.webhooks import router as webhooks_router

router = APIRouter(prefix="/api")
router.include_router(auth_router.router)
router.include_router(users_router.router)
router.include_router(machines_router.router)
router.include_router(patterns_router.router)
router.include_router(patterns_history.router)
router.include_router(patterns_history.shared_router)
router.include_router(social_router.router)
router.include_router(admin_router.router)
router.include_router(webhooks_router.router)
router.include_router(analytics_router.router)
router.include_router(media_router.router)

# Server-rendered pages, outside `/api`: the admin dashboard.
pages = APIRouter()
pages.include_router(analytics_pages.router)

# Paths that accept request bodies other than JSON.
EXTRA_BODY_TYPES: dict[str, tuple[str, ...]] = {
    **{
        path: ("application/xml", "text/xml")
        for path in (*machines_router.XML_BODY_PATHS, *patterns_router.XML_BODY_PATHS)
    },
    **{path: (analytics_pages.FORM_TYPE,) for path in analytics_pages.FORM_PATHS},
    users_router.AVATAR_UPLOAD_PATH: (MULTIPART_TYPE,),
    media_router.SAMPLE_UPLOAD_PATH: (MULTIPART_TYPE,),
}


def streamed_bodies(settings: Settings) -> dict[str, int]:
    """Paths whose handlers read their (upload) body as a stream, with the limit of the
    file each takes."""
    return {
        users_router.AVATAR_UPLOAD_PATH: settings.avatar_max_bytes,
        media_router.SAMPLE_UPLOAD_PATH: settings.sample_max_bytes,
    }
