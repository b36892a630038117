"""What an app's storage holds, looked at behind its back (the local folder or the
SeaweedFS bucket)."""

from __future__ import annotations

from beatmachine.core.config import Settings
from tests.seaweedfs import SeaweedFS


def listed(settings: Settings, seaweedfs: SeaweedFS | None, prefix: str) -> list[str]:
    """The keys stored under `prefix` (blocking: run it in a thread)."""
    if settings.storage_backend == "s3":
        assert seaweedfs is not None
        found = seaweedfs.client().list_objects_v2(Bucket=seaweedfs.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in found.get("Contents", []))
    root = settings.effective_media_dir
    return sorted(
        str(path.relative_to(root))
        for path in (root / prefix).rglob("*")
        if path.is_file() and not path.name.startswith(".")
    )
