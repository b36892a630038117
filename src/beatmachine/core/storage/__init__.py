"""Object storage: files on the local disk (embedded) or in an S3 bucket (production).

Domains see only the `Storage` interface; `create_storage` picks the back end from
`STORAGE_BACKEND`. Both stream in and out, so a large file is never held in memory.

    storage = create_storage(settings)
    await storage.put("avatars/usr_x.webp", data, content_type="image/webp", public=True)
    async with await storage.open("avatars/usr_x.webp") as stream:
        async for chunk in stream: ...
    await storage.aclose()
"""

from __future__ import annotations

from beatmachine.core.config import Settings
from beatmachine.core.storage._base import (
    CHUNK_SIZE,
    Body,
    ObjectStream,
    Storage,
    StorageObjectNotFound,
    StorageUnavailable,
    StoredObject,
    validate_key,
)
from beatmachine.core.storage._local import MEDIA_PATH, LocalStorage, derive_url_key
from beatmachine.core.storage._s3 import PART_SIZE, S3Storage

__all__ = [
    "CHUNK_SIZE",
    "MEDIA_PATH",
    "PART_SIZE",
    "Body",
    "LocalStorage",
    "ObjectStream",
    "S3Storage",
    "Storage",
    "StorageObjectNotFound",
    "StorageUnavailable",
    "StoredObject",
    "create_storage",
    "validate_key",
]


def create_storage(settings: Settings) -> Storage:
    """The back end `settings.storage_backend` names, configured from `settings`.

    Nothing connects yet: the S3 client is made on first use.
    """
    if settings.storage_backend == "s3":
        if not settings.aws_s3_bucket:
            raise ValueError("STORAGE_BACKEND=s3 needs AWS_S3_BUCKET")
        return S3Storage(
            bucket=settings.aws_s3_bucket,
            region=settings.aws_s3_region,
            endpoint_url=settings.aws_s3_endpoint_url,
            access_key_id=settings.aws_access_key_id,
            secret_access_key=settings.aws_secret_access_key,
            cdn_base_url=settings.cdn_base_url,
            url_ttl=settings.storage_url_ttl,
            timeout=settings.storage_timeout,
        )
    return LocalStorage(
        settings.effective_media_dir,
        api_url=settings.api_url,
        cdn_base_url=settings.cdn_base_url,
        url_key=derive_url_key(settings.signing_secret()),
        url_ttl=settings.storage_url_ttl,
    )
