"""Worker process: runs every domain's periodic jobs until stopped."""

from __future__ import annotations

import asyncio
import signal

import structlog

from beatmachine import api
from beatmachine.app import build_state
from beatmachine.core.config import Settings

log = structlog.get_logger(__name__)


async def run_worker(settings: Settings) -> None:
    state = build_state(settings)
    api.register_extensions(state)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state.scheduler.start()
    log.info("worker_started", jobs=[job.name for job in state.scheduler.jobs])
    try:
        await stop.wait()
    finally:
        await state.scheduler.stop()
        for close in state.on_shutdown:
            await close()
        await state.mailer.drain()
        await state.cache.close()
        await state.engine.dispose()
