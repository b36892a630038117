"""Fixtures of the core tests: SeaweedFS (one per worker, started on first use) and the
storages under test."""

from __future__ import annotations

from tests.core.storage_support import make_storage_case, storage_case
from tests.seaweedfs import seaweedfs_fixture

# Registered here, once: a fixture imported into two test modules would be two fixtures,
# and a session-scoped server would start twice.
__all__ = ["make_storage_case", "seaweedfs_fixture", "storage_case"]
