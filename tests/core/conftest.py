"""Fixtures of the core tests: the storages under test (on the local disk and on the
SeaweedFS of the top conftest)."""

from __future__ import annotations

from tests.core.storage_support import make_storage_case, storage_case

__all__ = ["make_storage_case", "storage_case"]
