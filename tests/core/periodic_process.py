"""A scheduler process of the tests' own: the real scheduler, queue and worker, with a
periodic job that notes each period it runs for in the file `TEST_PERIODIC_RUNS`.

    python -m tests.core.periodic_process      (settings from the environment)
"""

from __future__ import annotations

import asyncio
import os
import signal

import anyio

from beatmachine.core.config import get_settings
from beatmachine.core.jobs import PeriodicJob
from beatmachine.instance import build_state


async def main() -> None:
    state = build_state(get_settings())
    runs = anyio.Path(os.environ["TEST_PERIODIC_RUNS"])

    async def note(period: int) -> int:
        async with await anyio.open_file(runs, "a") as out:
            await out.write(f"{period}\n")
        return 1

    state.scheduler.add(PeriodicJob("test.every-second", 1, note))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await state.start(worker=True, scheduler=True)
    print("periodic_process_ready", flush=True)
    try:
        await stop.wait()
    finally:
        await state.aclose()


if __name__ == "__main__":
    asyncio.run(main())
