"""Tables of the media domain: users' audio samples."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from beatmachine.core.db import Base, IdMixin, TimestampMixin

NAME_MAX = 100


class Sample(IdMixin, TimestampMixin, Base):
    """One uploaded sound: the original as sent (private), and once converted its working
    form (mono, 44,100 Hz, trimmed, loudness-normalised WAV) and a compressed preview.
    `status` is `pending`, `processing`, `ready` or `failed` (with `error`)."""

    __tablename__ = "media_samples"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_media_samples_owner_name"),
        # The owner's samples, newest first.
        Index("ix_media_samples_owner_created", "owner_id", "created_at", "id"),
    )

    owner_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    status: Mapped[str] = mapped_column(String(12))
    error: Mapped[str | None] = mapped_column(String(300))
    # What was sent: the file name the client gave, the container found in the bytes
    # (`wav`, `flac`, `ogg`, `opus`, `mp3`, `webm`) and its codec, size and duration.
    original_filename: Mapped[str] = mapped_column(String(255))
    original_format: Mapped[str] = mapped_column(String(10))
    original_codec: Mapped[str] = mapped_column(String(20))
    original_bytes: Mapped[int] = mapped_column(BigInteger)
    original_duration: Mapped[float] = mapped_column(Float)
    # `samples/<owner>/<sample>`; the files are `original`, `work.wav`, `preview.mp3`.
    storage_key: Mapped[str] = mapped_column(String(200))
    # Every byte this sample keeps in storage, counted against the owner's quota.
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    conversion_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Once ready: the working form's length, its loudness and true peak after the
    # normalisation, and the gain that was applied.
    length_samples: Mapped[int | None] = mapped_column(Integer)
    loudness_lufs: Mapped[float | None] = mapped_column(Float)
    true_peak_dbtp: Mapped[float | None] = mapped_column(Float)
    gain_db: Mapped[float | None] = mapped_column(Float)
