"""How the users domain attaches to an app instance."""

from __future__ import annotations

from beatmachine.core.state import AppState
from beatmachine.users import service


def setup(state: AppState) -> None:
    """Answer the display names that earlier domains show (machine version authors)."""
    state.display_names = service.display_names
