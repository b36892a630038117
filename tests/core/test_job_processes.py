"""The job queue across real processes, on both back ends: nothing is lost when a process
is killed in the middle of a job or between a commit and the hand-off, and a periodic job
runs once a period however many schedulers run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from beatmachine.core.config import Settings
from beatmachine.core.events import Delivered
from beatmachine.patterns.events import PatternPlayed
from tests.conftest import AppMaker
from tests.factories import register
from tests.jobs import settle
from tests.patterns.helpers import PATTERN_OVERRIDES, create_pattern
from tests.processes import Processes, process_env, wait_until_serving
from tests.smtp_server import SmtpServer, free_port, with_subject
from tests.waiting import eventually

VERIFY_SUBJECT = "Confirm your e-mail for the Beat Machine"
# Short, so that what a killed process held is taken up again within the test.
REDELIVERY = {"JOB_REDELIVERY_TIMEOUT": 2, "JOB_RETRY_BASE_DELAY": 0.05}


@pytest.fixture
def held_smtp() -> Iterator[SmtpServer]:
    """An SMTP server that never answers the first message it is sent."""
    server = SmtpServer(hold_first=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def test_settings(make_app: AppMaker) -> Settings:
    """The test's back ends for processes of its own (emptied afterwards)."""
    settings: Settings = make_app().state.services.settings
    return settings


async def register_over_http(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        account = await register(client)
    return account.email


async def test_the_embedded_server_killed_mid_job_does_the_job_after_its_next_start(
    processes: Processes, test_settings: Settings, held_smtp: SmtpServer
) -> None:
    env = process_env(test_settings, SMTP_URL=held_smtp.url, **REDELIVERY)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    first = processes.server(env, port, name="first-server")
    await wait_until_serving(first, base_url)

    email = await register_over_http(base_url)  # its verification mail is a job
    await held_smtp.wait_until_held()
    first.kill()
    second = processes.server(env, port, name="second-server")
    await wait_until_serving(second, base_url)

    [mail] = await held_smtp.wait_for(with_subject(VERIFY_SUBJECT), within=30)
    assert mail["To"] == email


async def test_a_worker_killed_mid_job_leaves_the_job_to_another_worker(
    processes: Processes, make_app: AppMaker, test_settings: Settings, held_smtp: SmtpServer
) -> None:
    env = process_env(test_settings, SMTP_URL=held_smtp.url, **REDELIVERY)
    first = processes.worker(env, name="first-worker")
    await first.wait_for_output("worker_started")
    api = make_app(RUN_WORKER=False, SMTP_URL=held_smtp.url, **REDELIVERY)

    async with LifespanManager(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            account = await register(client)
        await held_smtp.wait_until_held()  # the first worker is in the middle of the job
        second = processes.worker(env, name="second-worker")
        await second.wait_for_output("worker_started")
        first.kill()

        [mail] = await held_smtp.wait_for(with_subject(VERIFY_SUBJECT), within=30)
        await settle(api.state.services)  # the second worker finished and acknowledged it

    assert mail["To"] == account.email
    assert len(held_smtp.received(with_subject(VERIFY_SUBJECT))) == 1


async def test_a_supervised_worker_that_dies_is_started_again(
    processes: Processes, test_settings: Settings
) -> None:
    supervisor = processes.worker(process_env(test_settings), processes=2)
    await eventually(
        lambda: asyncio.sleep(0, result=supervisor.output().count("worker_started") == 2),
        within=30,
    )
    [pids] = [
        json.loads(line)["pids"]
        for line in supervisor.output().splitlines()
        if '"workers_started"' in line
    ]

    os.kill(pids[0], signal.SIGKILL)

    await eventually(
        lambda: asyncio.sleep(0, result=supervisor.output().count("worker_started") == 3),
        within=30,
    )
    assert '"worker_died"' in supervisor.output()
    supervisor.stop()
    assert supervisor.process.returncode == 0
    assert supervisor.output().count("worker_stopped") == 2


async def test_three_schedulers_run_a_periodic_job_once_a_period(
    processes: Processes, test_settings: Settings, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.txt"
    env = process_env(test_settings, TEST_PERIODIC_RUNS=runs)
    schedulers = [processes.script("tests.core.periodic_process", env) for _scheduler in range(3)]
    for scheduler in schedulers:
        await scheduler.wait_for_output("periodic_process_ready")

    def periods() -> list[int]:
        return [int(line) for line in runs.read_text().split()] if runs.exists() else []

    # Five whole periods after the last start; the first seen may be partial.
    await eventually(lambda: asyncio.sleep(0, result=len(set(periods())) >= 6), within=30)
    for scheduler in schedulers:
        scheduler.stop()

    counts = Counter(periods())
    assert set(counts.values()) == {1}, counts
    seen = sorted(counts)
    assert seen == list(range(seen[0], seen[-1] + 1)), seen


async def test_an_event_committed_by_a_process_killed_before_the_hand_off_is_delivered(
    processes: Processes, make_app: AppMaker, test_settings: Settings
) -> None:
    api = make_app(**PATTERN_OVERRIDES)
    async with LifespanManager(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            owner = await register(client)
            pattern = await create_pattern(client, owner)
        state = api.state.services
        await settle(state)
        received: list[Delivered[PatternPlayed]] = []

        async def keep(_session: Any, delivered: Delivered[PatternPlayed]) -> None:
            received.append(delivered)

        state.events.listen(PatternPlayed, "test.played-after-a-crash", keep)
        crashed = processes.script(
            "tests.core.commit_then_die", process_env(test_settings), "--pattern", pattern["id"]
        )
        await asyncio.to_thread(crashed.process.wait, 30)

        assert crashed.process.returncode == -9, crashed.output()
        assert "committed" in crashed.output()
        await eventually(lambda: asyncio.sleep(0, result=bool(received)), within=15)
    [delivered] = received
    assert delivered.event.pattern_id == pattern["id"]
    assert delivered.event.owner_id == owner.id
    assert delivered.event.player_id is None
