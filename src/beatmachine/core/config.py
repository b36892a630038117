"""Settings of the service, read from the environment (and an optional `.env`).

Names follow the front end's `.env.example`, so one environment file serves both.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int) -> int:
    """Turn `15m`, `1h`, `30d` or a number of seconds into seconds."""
    if isinstance(value, int):
        return value
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 900, 15m, 1h, 30d)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the service; the defaults are the embedded set-up."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # --- server -----------------------------------------------------------
    host: str = Field("127.0.0.1", alias="HOST")
    port: int = Field(8000, alias="PORT")
    workers: int = Field(1, alias="WORKERS")
    var_dir: Path = Field(Path("var"), alias="VAR_DIR")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    log_json: bool = Field(True, alias="LOG_JSON")
    max_body_bytes: int = Field(1_048_576, alias="MAX_BODY_BYTES")
    sentry_dsn: str = Field("", alias="SENTRY_DSN")
    run_scheduler: bool = Field(True, alias="RUN_SCHEDULER")
    run_worker: bool = Field(True, alias="RUN_WORKER")

    # --- database -----------------------------------------------------------
    database_url: str = Field("", alias="DATABASE_URL")
    db_pool_size: int = Field(10, alias="DB_POOL_SIZE")
    db_max_overflow: int = Field(20, alias="DB_MAX_OVERFLOW")
    db_echo: bool = Field(False, alias="DB_ECHO")

    # --- redis ----------------------------------------------------------------
    redis_url: str = Field("", alias="REDIS_URL")
    redis_key_prefix: str = Field("bm:", alias="REDIS_KEY_PREFIX")

    # --- auth -----------------------------------------------------------------
    jwt_secret: str = Field("", alias="JWT_SECRET")
    jwt_expires_in: int = Field(900, alias="JWT_EXPIRES_IN")
    refresh_token_ttl: int = Field(30 * 86400, alias="REFRESH_TOKEN_TTL")
    password_reset_ttl: int = Field(3600, alias="PASSWORD_RESET_TTL")
    email_verification_ttl: int = Field(2 * 86400, alias="EMAIL_VERIFICATION_TTL")
    account_deletion_grace: int = Field(30 * 86400, alias="ACCOUNT_DELETION_GRACE")
    bcrypt_rounds: int = Field(12, alias="BCRYPT_ROUNDS")
    argon2_time_cost: int = Field(3, alias="ARGON2_TIME_COST")
    argon2_memory_cost: int = Field(65536, alias="ARGON2_MEMORY_COST")
    admin_emails: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="ADMIN_EMAILS")

    # --- OAuth providers (empty client id = provider off) ----------------------
    google_client_id: str = Field("", alias="GOOGLE_CLIENT_ID")
    google_jwks_url: str = Field(
        "https://www.googleapis.com/oauth2/v3/certs", alias="GOOGLE_JWKS_URL"
    )
    google_issuers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["accounts.google.com", "https://accounts.google.com"],
        alias="GOOGLE_ISSUERS",
    )
    apple_client_id: str = Field("", alias="APPLE_CLIENT_ID")
    apple_jwks_url: str = Field("https://appleid.apple.com/auth/keys", alias="APPLE_JWKS_URL")
    apple_issuer: str = Field("https://appleid.apple.com", alias="APPLE_ISSUER")
    facebook_app_id: str = Field("", alias="FACEBOOK_APP_ID")
    facebook_app_secret: str = Field("", alias="FACEBOOK_APP_SECRET")
    facebook_graph_url: str = Field("https://graph.facebook.com", alias="FACEBOOK_GRAPH_URL")
    oauth_http_timeout: float = Field(5.0, alias="OAUTH_HTTP_TIMEOUT")

    # --- mail -------------------------------------------------------------------
    smtp_url: str = Field("", alias="SMTP_URL")
    mail_from: str = Field("Beat Machine <no-reply@salsanor.no>", alias="MAIL_FROM")
    outbox_dir: Path | None = Field(None, alias="OUTBOX_DIR")

    # --- limits -------------------------------------------------------------
    rate_limit_enabled: bool = Field(True, alias="RATE_LIMIT_ENABLED")
    rate_limit_anonymous: int = Field(100, alias="RATE_LIMIT_ANONYMOUS")
    rate_limit_authenticated: int = Field(1000, alias="RATE_LIMIT_AUTHENTICATED")
    rate_limit_window: int = Field(900, alias="RATE_LIMIT_WINDOW")
    rate_limit_pattern_create: int = Field(20, alias="RATE_LIMIT_PATTERN_CREATE")
    rate_limit_comment_create: int = Field(60, alias="RATE_LIMIT_COMMENT_CREATE")
    login_fail_limit_account: int = Field(5, alias="LOGIN_FAIL_LIMIT_ACCOUNT")
    login_fail_limit_ip: int = Field(20, alias="LOGIN_FAIL_LIMIT_IP")
    login_fail_window: int = Field(900, alias="LOGIN_FAIL_WINDOW")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="TRUSTED_PROXIES"
    )

    # --- object storage ---------------------------------------------------------
    storage_backend: Literal["local", "s3"] = Field("local", alias="STORAGE_BACKEND")
    media_dir: Path | None = Field(None, alias="MEDIA_DIR")
    aws_s3_bucket: str = Field("", alias="AWS_S3_BUCKET")
    aws_s3_region: str = Field("us-east-1", alias="AWS_S3_REGION")
    aws_s3_endpoint_url: str = Field("", alias="AWS_S3_ENDPOINT_URL")
    aws_access_key_id: str = Field("", alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: str = Field("", alias="AWS_SECRET_ACCESS_KEY")
    cdn_base_url: str = Field("", alias="CDN_BASE_URL")
    storage_url_ttl: int = Field(3600, alias="STORAGE_URL_TTL")
    storage_timeout: float = Field(10.0, alias="STORAGE_TIMEOUT")

    # --- media: avatars ---------------------------------------------------------
    # An avatar image (upload, data URL or the answer of an avatar URL) is at most this
    # long and this many pixels in area (a decompression bomb claims far more).
    avatar_max_bytes: int = Field(5 * 1024 * 1024, ge=1, alias="AVATAR_MAX_BYTES")
    avatar_max_pixels: int = Field(40_000_000, ge=1, alias="AVATAR_MAX_PIXELS")
    # Connect and read timeout of fetching an avatar URL (each; the whole fetch gets both).
    avatar_fetch_timeout: float = Field(10.0, gt=0, alias="AVATAR_FETCH_TIMEOUT")

    # --- media: audio samples ---------------------------------------------------
    # An uploaded sample is at most this long in bytes and (as decoded) in seconds; each
    # account keeps at most `SAMPLE_QUOTA_BYTES` in samples (originals, working forms
    # and previews together).
    sample_max_bytes: int = Field(20 * 1024 * 1024, ge=1, alias="SAMPLE_MAX_BYTES")
    sample_max_seconds: float = Field(30.0, gt=0, alias="SAMPLE_MAX_SECONDS")
    sample_quota_bytes: int = Field(200 * 1024 * 1024, ge=0, alias="SAMPLE_QUOTA_BYTES")
    # Seconds one ffmpeg run of a sample's check or conversion may take.
    sample_ffmpeg_time_limit: float = Field(60.0, gt=0, alias="SAMPLE_FFMPEG_TIME_LIMIT")

    # --- background jobs ------------------------------------------------------
    job_retries: int = Field(8, alias="JOB_RETRIES")
    job_retry_base_delay: float = Field(2.0, alias="JOB_RETRY_BASE_DELAY")
    job_retry_max_delay: float = Field(3600.0, alias="JOB_RETRY_MAX_DELAY")
    job_redelivery_timeout: float = Field(60.0, alias="JOB_REDELIVERY_TIMEOUT")
    job_concurrency: int = Field(20, alias="JOB_CONCURRENCY")
    event_retention: int = Field(7 * 86400, alias="EVENT_RETENTION")

    # --- social ---------------------------------------------------------------
    # Activities (and the feeds that show them) are removed after this long.
    activity_retention: int = Field(90 * 86400, alias="ACTIVITY_RETENTION")
    # A feed shows the newest this many activities; older ones are not paged to.
    feed_max_items: int = Field(1000, ge=1, le=100_000, alias="FEED_MAX_ITEMS")
    # One fan-out job writes an activity into at most this many followers' feeds.
    feed_fanout_batch: int = Field(5000, ge=1, alias="FEED_FANOUT_BATCH")
    # Following someone brings this many of their recent activities into one's feed.
    feed_backfill: int = Field(50, ge=0, le=1000, alias="FEED_BACKFILL")
    # How long notifications gather before they are e-mailed together.
    notification_email_delay: int = Field(600, ge=0, alias="NOTIFICATION_EMAIL_DELAY")

    # --- analytics ------------------------------------------------------------
    # Raw usage events are removed after this long; the rollups are kept for ever.
    analytics_event_retention: int = Field(90 * 86400, alias="ANALYTICS_EVENT_RETENTION")
    # How often the rollup runs, and how far behind the present it stops (so that a
    # transaction still open when it starts is not missed).
    analytics_rollup_every: int = Field(60, ge=1, alias="ANALYTICS_ROLLUP_EVERY")
    analytics_rollup_lag: int = Field(60, ge=0, alias="ANALYTICS_ROLLUP_LAG")
    # Answers of the analytics endpoints are cached this long (0: not cached).
    analytics_cache_ttl: int = Field(10, ge=0, alias="ANALYTICS_CACHE_TTL")

    # --- outgoing requests (webhooks; avatar URLs) -----------------------------
    # CIDRs that outgoing requests may reach although private or loopback (tests, an
    # internal receiver); empty = only public addresses.
    outbound_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="OUTBOUND_ALLOWED_NETWORKS"
    )

    # --- webhooks ---------------------------------------------------------------
    webhook_connect_timeout: float = Field(5.0, alias="WEBHOOK_CONNECT_TIMEOUT")
    webhook_read_timeout: float = Field(10.0, alias="WEBHOOK_READ_TIMEOUT")
    webhook_max_attempts: int = Field(10, ge=1, le=50, alias="WEBHOOK_MAX_ATTEMPTS")
    webhook_retry_base_delay: float = Field(60.0, ge=0, alias="WEBHOOK_RETRY_BASE_DELAY")
    webhook_retry_max_delay: float = Field(21600.0, ge=0, alias="WEBHOOK_RETRY_MAX_DELAY")
    webhook_disable_after: int = Field(5 * 86400, alias="WEBHOOK_DISABLE_AFTER")
    webhook_secret_overlap: int = Field(86400, alias="WEBHOOK_SECRET_OVERLAP")
    webhook_delivery_retention: int = Field(30 * 86400, alias="WEBHOOK_DELIVERY_RETENTION")

    # --- operations -----------------------------------------------------------
    # Bearer token a Prometheus scraper sends to `/metrics`; empty = metrics not served.
    metrics_token: str = Field("", alias="METRICS_TOKEN")

    # --- web ----------------------------------------------------------------
    api_url: str = Field("http://127.0.0.1:8000", alias="API_URL")
    app_url: str = Field("http://localhost:3009", alias="APP_URL")
    machines_dir: Path | None = Field(None, alias="MACHINES_DIR")
    install_default_machines: bool = Field(True, alias="INSTALL_DEFAULT_MACHINES")
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="CORS_ORIGINS")

    @field_validator("admin_emails", mode="before")
    @classmethod
    def _admin_emails(cls, value: Any) -> Any:
        value = _split_csv(value)
        return [email.lower() for email in value] if isinstance(value, list) else value

    @field_validator("cors_origins", "google_issuers", "trusted_proxies", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("outbound_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        value = _split_csv(value)
        if isinstance(value, list):
            for network in value:
                ipaddress.ip_network(str(network), strict=False)  # a bad CIDR fails here
        return value

    @field_validator(
        "jwt_expires_in",
        "refresh_token_ttl",
        "rate_limit_window",
        "storage_url_ttl",
        "event_retention",
        "activity_retention",
        "notification_email_delay",
        "webhook_disable_after",
        "webhook_secret_overlap",
        "webhook_delivery_retention",
        "analytics_event_retention",
        "analytics_rollup_every",
        "analytics_rollup_lag",
        "analytics_cache_ttl",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    # --- derived ------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.var_dir / 'beatmachine.db'}"

    @property
    def effective_cors_origins(self) -> list[str]:
        return self.cors_origins or [self.app_url.rstrip("/")]

    @property
    def effective_outbox_dir(self) -> Path:
        return self.outbox_dir or self.var_dir / "outbox"

    @property
    def effective_media_dir(self) -> Path:
        return self.media_dir or self.var_dir / "media"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def signing_secret(self) -> str:
        """The JWT secret; generated once into the var folder when none is set."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.var_dir / "jwt_secret"
        if path.exists():
            self.jwt_secret = path.read_text().strip()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.jwt_secret = secrets.token_urlsafe(48)
            path.write_text(self.jwt_secret)
            path.chmod(0o600)
        return self.jwt_secret


@lru_cache
def get_settings() -> Settings:
    return Settings()
