"""Worker processes: run queued and periodic jobs until stopped.

`beatmachine worker --processes N` starts N worker processes and keeps them running: a
process that dies is started again. Each one runs a job worker, the scheduler of periodic
jobs (leases keep a job to once a period however many run it) and an outbox relay.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import time
from multiprocessing.process import BaseProcess

import structlog

from beatmachine.core.config import Settings, get_settings
from beatmachine.core.logging import configure_logging
from beatmachine.instance import build_state

log = structlog.get_logger(__name__)

# A child that dies sooner than this after its start is restarted only after a pause,
# so a worker that cannot start (the database is down) does not spin.
RESTART_PAUSE_SECONDS = 2.0
STOP_TIMEOUT_SECONDS = 30.0


async def run_worker(settings: Settings) -> None:
    """One worker process: jobs, periodic jobs and the relay, until SIGTERM or SIGINT."""
    state = build_state(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await state.start(worker=True, scheduler=True)
        log.info("worker_started", jobs=state.jobs.registered())
        await stop.wait()
    finally:
        await state.aclose()
        log.info("worker_stopped")


def _child_main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    asyncio.run(run_worker(settings))


def supervise(processes: int) -> None:
    """Run `processes` worker processes, restart any that dies, stop them all on SIGTERM
    or SIGINT (each finishes its running jobs first)."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def spawn() -> tuple[BaseProcess, float]:
        child = context.Process(target=_child_main, name="beatmachine-worker")
        child.start()
        return child, time.monotonic()

    children = [spawn() for _ in range(processes)]
    log.info("workers_started", pids=[child.pid for child, _ in children])
    while not stopping:
        time.sleep(0.2)
        for index, (child, started) in enumerate(children):
            if child.is_alive() or stopping:
                continue
            log.warning("worker_died", pid=child.pid, exitcode=child.exitcode)
            if time.monotonic() - started < RESTART_PAUSE_SECONDS:
                time.sleep(RESTART_PAUSE_SECONDS)
            children[index] = spawn()
    for child, _ in children:
        if child.is_alive() and child.pid is not None:
            child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child, _ in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
