"""Objects in an S3 bucket (AWS, or any S3 API such as SeaweedFS, MinIO, R2) via aioboto3.

One client per process, created on first use and kept (its connection pool serves
every request); `aclose` releases it. Every botocore failure is turned into
StorageUnavailable or StorageObjectNotFound here, so no caller ever sees botocore.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aioboto3  # type: ignore[import-untyped]
import anyio
import structlog
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from beatmachine.core.storage._base import (
    CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    Body,
    ObjectStream,
    StorageObjectNotFound,
    StorageUnavailable,
    StoredObject,
    blocks,
    join_url,
    validate_header_value,
    validate_key,
)

log = structlog.get_logger(__name__)

# Bodies up to one part go up in one PutObject; longer streams in parts of this size
# (S3 wants at least 5 MiB per part but the last, and at most 10,000 parts: 80 GiB).
PART_SIZE = 8 * 1024 * 1024
# Connections the client keeps open; each download being streamed holds one.
MAX_POOL_CONNECTIONS = 50
# Attempts in all, the first included (botocore's own "max_attempts" counts retries
# only): an unreachable store should answer "unavailable" within a couple of
# timeouts, not after botocore's default of several attempts with back-off.
MAX_ATTEMPTS = 2
_PUBLIC_METADATA = "public"
_NOT_FOUND_CODES = {"NoSuchKey", "NotFound", "404"}


class S3Storage:
    """A bucket reached through one lazily created, long-lived aioboto3 client."""

    def __init__(
        self,
        *,
        bucket: str,
        region: str,
        endpoint_url: str,
        access_key_id: str,
        secret_access_key: str,
        cdn_base_url: str,
        url_ttl: int,
        timeout: float,
    ) -> None:
        self.bucket = bucket
        self._region = region
        self._endpoint_url = endpoint_url.rstrip("/")
        self._cdn_base_url = cdn_base_url
        self._url_ttl = url_ttl
        # Empty credentials: let botocore's chain find them (environment, instance role).
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            region_name=region,
        )
        self._config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            # Path style for S3-compatible servers (SeaweedFS needs it); AWS itself
            # prefers virtual-hosted buckets.
            s3={"addressing_style": "path" if self._endpoint_url else "virtual"},
            signature_version="s3v4",
            max_pool_connections=MAX_POOL_CONNECTIONS,
            # Checksums only where the API demands them: not every S3-compatible server
            # understands the trailing checksums newer botocore sends by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: Any = None
        self._exit_stack: AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()

    # --- the Storage interface ------------------------------------------------------

    async def put(
        self,
        key: str,
        body: Body,
        *,
        content_type: str,
        public: bool,
        cache_control: str | None = None,
    ) -> StoredObject:
        """One PutObject for bodies up to one part, a multipart upload for longer ones."""
        validate_key(key)
        attributes: dict[str, Any] = {
            "ContentType": validate_header_value("content type", content_type),
            "Metadata": {_PUBLIC_METADATA: "1" if public else "0"},
        }
        if cache_control:
            attributes["CacheControl"] = validate_header_value("cache control", cache_control)
        parts = blocks(body, PART_SIZE)
        try:
            first = await anext(parts, b"")
            if len(first) < PART_SIZE:
                response = await self._call(
                    "put_object", Bucket=self.bucket, Key=key, Body=first, **attributes
                )
                size = len(first)
            else:
                response, size = await self._put_multipart(key, first, parts, attributes)
        finally:
            await parts.aclose()
        return StoredObject(
            key=key,
            size=size,
            content_type=content_type,
            cache_control=cache_control or None,
            etag=str(response["ETag"]),
            last_modified=_response_date(response),
            public=public,
        )

    async def open(self, key: str) -> ObjectStream:
        """GetObject; the body is read from the connection chunk by chunk."""
        validate_key(key)
        response = await self._call("get_object", Bucket=self.bucket, Key=key, reading=True)
        body = response["Body"]

        async def chunks() -> AsyncGenerator[bytes, None]:
            try:
                async for chunk in body.iter_chunks(CHUNK_SIZE):
                    yield chunk
            except (BotoCoreError, OSError, TimeoutError) as exc:
                raise _unavailable("get_object", exc) from exc

        async def release() -> None:
            # Closes the connection if the body was not read to the end.
            body.close()

        return ObjectStream(_object_info(key, response), chunks(), release)

    async def head(self, key: str) -> StoredObject | None:
        """HeadObject, or None on 404."""
        validate_key(key)
        try:
            response = await self._call("head_object", Bucket=self.bucket, Key=key, reading=True)
        except StorageObjectNotFound:
            return None
        return _object_info(key, response)

    async def delete(self, key: str) -> None:
        """DeleteObject, which S3 answers the same whether the object existed or not."""
        validate_key(key)
        await self._call("delete_object", Bucket=self.bucket, Key=key)

    async def url(self, key: str, *, public: bool, expires_in: int | None = None) -> str:
        """The CDN or plain object URL if public, else a presigned GET URL."""
        validate_key(key)
        if public:
            return join_url(self._cdn_base_url or self._bucket_url(), key)
        client = await self._ensure_client()
        try:
            url: str = await client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=expires_in if expires_in is not None else self._url_ttl,
            )
        except BotoCoreError as exc:  # e.g. no credentials anywhere
            raise _unavailable("generate_presigned_url", exc) from exc
        return url

    async def ping(self) -> None:
        """HeadBucket: the store answers, and the bucket exists and is ours (a missing
        bucket or refused keys are configuration errors, reported as unavailable)."""
        await self._call("head_bucket", Bucket=self.bucket)

    async def aclose(self) -> None:
        """Close the client and its connection pool."""
        async with self._client_lock:
            if self._exit_stack is not None:
                stack, self._exit_stack, self._client = self._exit_stack, None, None
                await stack.aclose()

    # --- beyond the interface -------------------------------------------------------

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (tests, CLI; production buckets are the
        operator's)."""
        params: dict[str, Any] = {"Bucket": self.bucket}
        if self._region != "us-east-1" and not self._endpoint_url:
            params["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        client = await self._ensure_client()
        try:
            await client.create_bucket(**params)
        except ClientError as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":
                raise _unavailable("create_bucket", exc) from exc
        except (BotoCoreError, OSError, TimeoutError) as exc:
            raise _unavailable("create_bucket", exc) from exc

    # --- internals ------------------------------------------------------------------

    async def _put_multipart(
        self,
        key: str,
        first: bytes,
        parts: AsyncGenerator[bytes, None],
        attributes: dict[str, Any],
    ) -> tuple[dict[str, Any], int]:
        created = await self._call(
            "create_multipart_upload", Bucket=self.bucket, Key=key, **attributes
        )
        upload = {"Bucket": self.bucket, "Key": key, "UploadId": created["UploadId"]}
        uploaded: list[dict[str, Any]] = []
        size = 0
        try:
            part: bytes | None = first
            while part is not None:
                number = len(uploaded) + 1
                response = await self._call("upload_part", PartNumber=number, Body=part, **upload)
                uploaded.append({"ETag": response["ETag"], "PartNumber": number})
                size += len(part)
                part = await anext(parts, None)
            completed = await self._call(
                "complete_multipart_upload", MultipartUpload={"Parts": uploaded}, **upload
            )
        except BaseException:
            # Whatever failed (the store, the source stream, a cancellation), leave no
            # half-written upload behind: its parts would be kept, and billed, forever.
            with anyio.CancelScope(shield=True):
                await self._abort(upload)
            raise
        return completed, size

    async def _abort(self, upload: dict[str, Any]) -> None:
        try:
            await self._call("abort_multipart_upload", **upload)
        except StorageUnavailable:
            log.warning("storage_abort_failed", key=upload["Key"], upload_id=upload["UploadId"])

    async def _ensure_client(self) -> Any:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    # botocore reads and parses its JSON models synchronously while the
                    # client is made (about 0.2 s of CPU): done in a thread first, the
                    # client is then built from its caches.
                    await anyio.to_thread.run_sync(_load_botocore_data, self._session)
                    stack = AsyncExitStack()
                    self._client = await stack.enter_async_context(
                        self._session.client(
                            "s3", endpoint_url=self._endpoint_url or None, config=self._config
                        )
                    )
                    self._exit_stack = stack
        return self._client

    async def _call(self, operation: str, *, reading: bool = False, **params: Any) -> Any:
        """Call the client's `operation`, botocore errors turned into ours: a 404 as
        StorageObjectNotFound when `reading`, anything else as StorageUnavailable."""
        client = await self._ensure_client()
        try:
            return await getattr(client, operation)(**params)
        except ClientError as exc:
            if reading and _is_not_found(exc):
                raise StorageObjectNotFound() from exc
            raise _unavailable(operation, exc) from exc
        except (BotoCoreError, OSError, TimeoutError) as exc:
            raise _unavailable(operation, exc) from exc

    def _bucket_url(self) -> str:
        if self._endpoint_url:
            return f"{self._endpoint_url}/{self.bucket}"
        return f"https://{self.bucket}.s3.{self._region}.amazonaws.com"


def _load_botocore_data(session: Any) -> None:
    """Fill the caches of `session`'s botocore data loader with what an S3 client reads."""
    botocore_session = session._session
    loader = botocore_session.get_component("data_loader")
    for type_name in ("service-2", "endpoint-rule-set-1"):
        loader.load_service_model("s3", type_name)
    for name in ("endpoints", "partitions", "sdk-default-configuration"):
        loader.load_data(name)
    # boto3 imports its S3 helpers when the client class is made.
    importlib.import_module("boto3.s3.inject")


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_not_found(exc: Any) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # A missing bucket answers 404 too, but that is a configuration error, not a file.
    return _error_code(exc) != "NoSuchBucket" and (
        status == 404 or _error_code(exc) in _NOT_FOUND_CODES
    )


def _unavailable(operation: str, exc: BaseException) -> StorageUnavailable:
    code = _error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    log.warning("storage_unavailable", backend="s3", operation=operation, error=code)
    return StorageUnavailable()


def _object_info(key: str, response: dict[str, Any]) -> StoredObject:
    metadata: dict[str, str] = response.get("Metadata") or {}
    last_modified = response.get("LastModified")
    return StoredObject(
        key=key,
        size=int(response.get("ContentLength", 0)),
        content_type=str(response.get("ContentType") or DEFAULT_CONTENT_TYPE),
        cache_control=response.get("CacheControl") or None,
        etag=str(response.get("ETag", "")),
        last_modified=(
            last_modified.astimezone(UTC)
            if isinstance(last_modified, datetime)
            else _response_date(response)
        ),
        public=metadata.get(_PUBLIC_METADATA) == "1",
    )


def _response_date(response: dict[str, Any]) -> datetime:
    """The server's `Date` header: PutObject and CompleteMultipartUpload return no
    LastModified, and asking with HeadObject would cost a round trip."""
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(header).astimezone(UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)
