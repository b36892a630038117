"""What the suite does when a service or file a test needs is missing: skip the test,
saying why, or fail it when `BM_REQUIRE_SERVICES=1` (CI never skips)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_SERVICES = os.environ.get("BM_REQUIRE_SERVICES", "") == "1"


def missing(reason: str) -> NoReturn:
    """Skip the running test for `reason`, or fail it under BM_REQUIRE_SERVICES=1."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (BM_REQUIRE_SERVICES=1 requires it)")
    pytest.skip(reason)
