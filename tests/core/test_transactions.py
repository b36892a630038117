"""The owner of a transaction: after-commit hooks run only once committed, after-rollback
hooks only when it rolls back."""

from __future__ import annotations

import pytest

from beatmachine.core.db import after_commit, after_rollback, transaction
from beatmachine.core.errors import ValidationFailed
from beatmachine.core.state import AppState


class Boom(Exception):
    pass


async def test_after_rollback_hooks_run_when_the_block_fails(state: AppState) -> None:
    ran: list[str] = []

    async def on_commit() -> None:
        ran.append("commit")

    async def on_rollback() -> None:
        ran.append("rollback")

    with pytest.raises(Boom):
        async with transaction(state.sessionmaker) as session:
            after_commit(session, on_commit)
            after_rollback(session, on_rollback)
            raise Boom

    assert ran == ["rollback"]


async def test_after_rollback_hooks_run_for_an_app_error_that_keeps_nothing(
    state: AppState,
) -> None:
    ran: list[str] = []

    async def on_rollback() -> None:
        ran.append("rollback")

    with pytest.raises(ValidationFailed):
        async with transaction(state.sessionmaker) as session:
            after_rollback(session, on_rollback)
            raise ValidationFailed()

    assert ran == ["rollback"]


async def test_after_rollback_hooks_do_not_run_once_committed(state: AppState) -> None:
    ran: list[str] = []

    async def on_commit() -> None:
        ran.append("commit")

    async def on_rollback() -> None:
        ran.append("rollback")

    async with transaction(state.sessionmaker) as session:
        after_commit(session, on_commit)
        after_rollback(session, on_rollback)

    assert ran == ["commit"]


async def test_a_failing_after_rollback_hook_lets_the_others_run_and_the_cause_be_raised(
    state: AppState,
) -> None:
    ran: list[str] = []

    async def failing() -> None:
        raise RuntimeError("storage down")

    async def second() -> None:
        ran.append("second")

    with pytest.raises(Boom):
        async with transaction(state.sessionmaker) as session:
            after_rollback(session, failing)
            after_rollback(session, second)
            raise Boom

    assert ran == ["second"]
