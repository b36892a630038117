"""The API with domain-event recording switched off: the baseline that
`events_overhead.py` measures recording against. Benchmarks only; never served."""

from __future__ import annotations

from typing import Any

from beatmachine.core import events


def _not_recorded(_session: Any, _event: Any) -> str:
    return ""


# Every service records through `events.record`, looked up when called.
events.record = _not_recorded

from beatmachine.main import app  # noqa: E402  (after the patch, which it must see)

__all__ = ["app"]
