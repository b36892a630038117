"""Settings and fixtures the webhook tests share: loopback allowed for outgoing requests,
a short retry schedule, an administrator, a real receiver on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import ADMIN_OVERRIDES
from tests.http_receiver import receiver_fixture  # noqa: F401  (the receiver fixture)
from tests.patterns.helpers import PATTERN_OVERRIDES

MAX_ATTEMPTS = 3
WEBHOOK_OVERRIDES: dict[str, Any] = {
    "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOK_MAX_ATTEMPTS": MAX_ATTEMPTS,
    "WEBHOOK_RETRY_BASE_DELAY": 0.05,
    "WEBHOOK_RETRY_MAX_DELAY": 0.1,
    "WEBHOOK_CONNECT_TIMEOUT": 2,
    "WEBHOOK_READ_TIMEOUT": 2,
    "RATE_LIMIT_COMMENT_CREATE": 1000,
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**PATTERN_OVERRIDES, **ADMIN_OVERRIDES, **WEBHOOK_OVERRIDES}
