"""Worker process: runs every domain's periodic jobs until stopped."""

from __future__ import annotations

import asyncio
import signal

import structlog

from beatmachine.core.config import Settings
from beatmachine.instance import build_state

log = structlog.get_logger(__name__)


async def run_worker(settings: Settings) -> None:
    state = build_state(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state.scheduler.start()
    log.info("worker_started", jobs=[job.name for job in state.scheduler.jobs])
    try:
        await stop.wait()
    finally:
        await state.aclose()
