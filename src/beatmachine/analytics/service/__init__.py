"""The analytics domain's logic, one concern per module: recording usage, the rollup,
and the reports."""

from beatmachine.analytics.service._dashboard import CHARTS, Dashboard, chart_rows, dashboard
from beatmachine.analytics.service._recording import record_active, record_usage
from beatmachine.analytics.service._reports import (
    SERIES_METRICS,
    active_users,
    key_distribution,
    popular_instruments,
    popular_patterns,
    retention,
    series,
    tempo_distribution,
)
from beatmachine.analytics.service._rollup import RollupRun, prune_events, roll_up, roll_up_in

__all__ = [
    "CHARTS",
    "SERIES_METRICS",
    "Dashboard",
    "RollupRun",
    "active_users",
    "chart_rows",
    "dashboard",
    "key_distribution",
    "popular_instruments",
    "popular_patterns",
    "prune_events",
    "record_active",
    "record_usage",
    "retention",
    "roll_up",
    "roll_up_in",
    "series",
    "tempo_distribution",
]
