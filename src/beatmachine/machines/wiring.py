"""How the machines domain attaches to an app instance: its start-up work."""

from __future__ import annotations

from beatmachine.core.state import AppState
from beatmachine.machines import bootstrap


def setup(state: AppState) -> None:
    """Install the default machines and those of `MACHINES_DIR` at start-up."""

    async def install_machines() -> None:
        await bootstrap.install_machines(state)

    state.on_startup.append(install_machines)
