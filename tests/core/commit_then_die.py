"""A process that counts a play of a pattern (recording its event in the outbox), commits,
and is killed with SIGKILL before anything hands the event on.

    python -m tests.core.commit_then_die --pattern PATTERN_ID   (settings from the environment)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from beatmachine.core.config import get_settings
from beatmachine.core.db import transaction
from beatmachine.instance import build_state
from beatmachine.patterns import service as patterns_service


async def main(pattern_id: str) -> None:
    # No `state.start()`: this process runs no relay, so only another one can deliver.
    state = build_state(get_settings())
    async with transaction(state.sessionmaker) as session:
        await patterns_service.play(session, state, None, pattern_id)
    print("committed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--pattern", required=True)
    asyncio.run(main(parser.parse_args().pattern))
