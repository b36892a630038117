"""How the media domain attaches to an app instance: the conversion and file removal
jobs, and the purge hook that removes the samples of purged accounts."""

from __future__ import annotations

from functools import partial

from beatmachine.core.state import AppState
from beatmachine.media import samples


def setup(state: AppState) -> None:
    """Register the sample jobs and the purge hook."""

    async def convert(sample_id: str) -> None:
        await samples.convert(state, sample_id)

    async def remove_files(key: str) -> None:
        await samples.remove_files(state, key)

    state.jobs.register(samples.CONVERT_JOB, convert)
    state.jobs.register(samples.REMOVE_FILES_JOB, remove_files)
    state.before_account_purge.append(partial(samples.forget, state.jobs))
