"""`in_batches`: a large clean-up as a run of short transactions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from beatmachine.core.db import in_batches
from beatmachine.core.state import AppState


async def test_batches_run_in_their_own_transactions_until_one_is_not_full(
    state: AppState,
) -> None:
    done = iter([3, 3, 1, 3])
    sessions: list[AsyncSession] = []

    async def step(session: AsyncSession) -> int:
        sessions.append(session)
        return next(done)

    total = await in_batches(state.sessionmaker, step, 3)

    assert total == 7
    assert len(sessions) == 3
    assert len({id(session) for session in sessions}) == 3
