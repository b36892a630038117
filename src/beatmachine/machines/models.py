"""Tables of the machines domain: machines and their immutable published versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from beatmachine.core.db import Base, IdMixin, TimestampMixin
from beatmachine.core.ids import utcnow


class Machine(TimestampMixin, Base):
    """A machine (`salsa`, `merengue`, …) and the number of its current version."""

    __tablename__ = "machines"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    flavor: Mapped[str] = mapped_column(String(50), unique=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    current_version: Mapped[int] = mapped_column(Integer)


class MachineVersion(IdMixin, Base):
    """One published state of a machine; never changed once written."""

    __tablename__ = "machine_versions"
    __table_args__ = (UniqueConstraint("machine_id", "version"),)

    machine_id: Mapped[str] = mapped_column(
        String(50), ForeignKey("machines.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    change_note: Mapped[str] = mapped_column(String(500), default="")
    author_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
