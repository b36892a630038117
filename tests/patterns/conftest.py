"""The pattern tests share the accounts of the root `conftest.py` (owner, other,
stranger, fan, admin)."""
