"""Signs of life of the processes around the workers (beat now), for the health page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, utcnow


class ServiceHeartbeat(Base):
    """A process's last sign of life: beat writes one with its ticks ("beat")."""

    __tablename__ = "service_heartbeat"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
