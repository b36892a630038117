"""How the users domain attaches to an app instance: the display names earlier domains
show, the avatar jobs (fetching URLs, removing replaced files, storing inline avatars of
before) and the guarded HTTP client avatar URLs are fetched through."""

from __future__ import annotations

from functools import partial

from beatmachine.core.jobs import PeriodicJob
from beatmachine.core.state import AppState
from beatmachine.users import avatars, service

AVATAR_CLIENT = "users.avatar_outbound"


def setup(state: AppState) -> None:
    """Answer display names, register the avatar jobs and the purge hook that removes the
    avatars of purged accounts; the HTTP client closes at shutdown."""
    state.display_names = service.display_names
    client = avatars.outbound_client(state.settings)
    state.extensions[AVATAR_CLIENT] = client
    state.on_shutdown.append(client.aclose)

    async def fetch(user_id: str, fetch_id: str) -> None:
        await avatars.fetch(state, client, user_id, fetch_id)

    async def remove_files(key: str) -> None:
        await avatars.remove_files(state, key)

    async def move_inline(_period: int) -> int:
        return await avatars.move_inline(state)

    state.jobs.register(avatars.FETCH_JOB, fetch)
    state.jobs.register(avatars.REMOVE_FILES_JOB, remove_files)
    state.scheduler.add(
        PeriodicJob("store-inline-avatars", avatars.MOVE_INLINE_EVERY_SECONDS, move_inline)
    )
    state.before_account_purge.append(partial(avatars.forget, state.jobs))
