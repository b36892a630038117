"""A worker process of `jobs_throughput.py`: the real worker (`build_state`, the job queue,
taskiq's receiver, the configured broker) with one small job of the benchmark's own,
which notes when it started against when it was queued. Benchmarks only.

    python bench/_job_worker.py        (settings from the environment; BENCH_NOTES_KEY)
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from redis.asyncio import Redis

from beatmachine.core.config import get_settings
from beatmachine.instance import build_state

JOB = "bench.note"


async def main() -> None:
    settings = get_settings()
    state = build_state(settings)
    notes = Redis.from_url(os.environ["BENCH_NOTES_URL"])
    key = os.environ["BENCH_NOTES_KEY"]

    async def note(queued_at: float) -> None:
        started = time.time()
        await notes.rpush(key, f"{started - queued_at:.6f} {started:.6f}")

    state.jobs.register(JOB, note)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await state.start(worker=True, scheduler=False)
    print("bench_worker_ready", flush=True)
    try:
        await stop.wait()
    finally:
        await state.aclose()
        await notes.aclose()


if __name__ == "__main__":
    asyncio.run(main())
