"""Failed password checks, counted per account and per address: past the limits, a
password is not even checked (sign-in and every other password check)."""

from __future__ import annotations

import structlog

from beatmachine.core.errors import RateLimitExceeded
from beatmachine.core.state import AppState

log = structlog.get_logger(__name__)

ACCOUNT_COUNT = "login-fail-account"
ADDRESS_COUNT = "login-fail-ip"


def _limits(state: AppState) -> tuple[int, int, int]:
    settings = state.settings
    return (
        settings.login_fail_limit_account,
        settings.login_fail_limit_ip,
        settings.login_fail_window,
    )


async def check_allowed(state: AppState, email: str, ip: str) -> None:
    """Refuse (429) a password check for an account or from an address that failed too
    often in the window; nothing is counted here."""
    account_limit, ip_limit, window = _limits(state)
    for name, key, limit in ((ACCOUNT_COUNT, email, account_limit), (ADDRESS_COUNT, ip, ip_limit)):
        decision = await state.limiter.peek(name, key, limit=limit, window=window)
        if not decision.allowed:
            raise RateLimitExceeded(
                "Too many failed password attempts; try again later.",
                headers={"Retry-After": str(decision.retry_after)},
            )


async def record_failure(state: AppState, email: str, ip: str) -> None:
    """Count a wrong password against the account and the address."""
    account_limit, ip_limit, window = _limits(state)
    await state.limiter.hit(ACCOUNT_COUNT, email, limit=account_limit, window=window)
    await state.limiter.hit(ADDRESS_COUNT, ip, limit=ip_limit, window=window)


async def clear_account(state: AppState, email: str) -> None:
    """Forget the account's failures (a right password, a new password)."""
    account_limit, _, window = _limits(state)
    await state.limiter.clear(ACCOUNT_COUNT, email, limit=account_limit, window=window)
