"""The registry's tables as SQLAlchemy 2.0 typed models (rows never leave ``storage/``).

Every datetime is timezone-aware UTC: ``UTCDateTime`` refuses naive values on the way in and
returns aware UTC values on the way out, on SQLite (which stores text) as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import JSON, TypeDecorator

NAME_MAX = 128
SHA_LEN = 64

# Deterministic constraint names, so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime column; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC before storing."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the registry; use timezone-aware UTC")
        value = value.astimezone(UTC)
        # SQLite stores text: drop the offset so values sort and compare as plain strings.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC whatever the backend gave back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the registry tables."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        bytes: LargeBinary(),
    }


class UserRow(Base):
    """A person who may be granted access."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    display_name: Mapped[str] = mapped_column(String(NAME_MAX))
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    # Canonical weekly-schedule text ("mon-fri 07:00-19:00; sat 09:00-12:00"); None: any time.
    schedule: Mapped[str | None] = mapped_column(Text)
    # Consent to let the scheduler add recent granted captures to this gallery.
    gallery_consent: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    images: Mapped[list[GalleryImageRow]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class GalleryImageRow(Base):
    """One face image of a user's gallery; the file lives in the crop store by sha256."""

    __tablename__ = "gallery_images"
    __table_args__ = (
        UniqueConstraint("user_id", "sha256"),
        Index("ix_gallery_images_user_id", "user_id"),
        Index("ix_gallery_images_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(SHA_LEN))
    # Relative to the data directory, e.g. "gallery/ab/abcdef....png".
    path: Mapped[str] = mapped_column(String(256))
    quality: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(256))
    added_at: Mapped[datetime]
    # The face's landmarks as [[x, y], ...] pixels of the stored image, a model-independent
    # canonical chip from which each model's crop is re-derived. NULL: a crop stored aligned
    # for the model that enrolled it (schema 0001), which other models can only resize.
    landmarks: Mapped[list[list[float]] | None] = mapped_column(JSON)

    user: Mapped[UserRow] = relationship(back_populates="images")
    embeddings: Mapped[list[EmbeddingRow]] = relationship(
        back_populates="image", cascade="all, delete-orphan", passive_deletes=True
    )


class EmbeddingRow(Base):
    """One gallery image embedded by one model: float32 bytes, never mixed across models."""

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("image_id", "model_sha256"),
        Index("ix_embeddings_model_sha256", "model_sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("gallery_images.id", ondelete="CASCADE"))
    model_sha256: Mapped[str] = mapped_column(String(SHA_LEN))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes]

    image: Mapped[GalleryImageRow] = relationship(back_populates="embeddings")


class ModelVersionRow(Base):
    """A model known to this installation; at most one is active (the API keeps exactly one)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # A second guard under the repository API: two active rows cannot be stored.
        Index(
            "ix_model_versions_one_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(SHA_LEN), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime]
    promoted_at: Mapped[datetime | None]
    # "candidate", "active", "retired", "rejected"; ``why`` says what decided it.
    status: Mapped[str] = mapped_column(String(32))
    why: Mapped[str] = mapped_column(Text, server_default="")


class AccessLogRow(Base):
    """One access decision of one door."""

    __tablename__ = "access_log"
    __table_args__ = (
        Index("ix_access_log_time", "time"),
        Index("ix_access_log_door_time", "door", "time"),
        Index("ix_access_log_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime]
    door: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The user granted, or the best candidate when denied (kept after the user is deleted).
    candidate: Mapped[str | None] = mapped_column(String(NAME_MAX))
    score: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    decision_id: Mapped[str] = mapped_column(String(64), unique=True)
    frames: Mapped[int] = mapped_column(Integer, server_default="0")
    # A stored capture of this decision (relative to the data directory), when enabled.
    capture_path: Mapped[str | None] = mapped_column(String(256))


class OutboxRow(Base):
    """An event not yet delivered to the broker; delivered in id order."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(256))
    payload: Mapped[bytes]
    qos: Mapped[int] = mapped_column(Integer, server_default="1")
    retain: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")


class DoorStateRow(Base):
    """State of one door that must survive a restart: lockout and small key/values."""

    __tablename__ = "door_state"

    door: Mapped[str] = mapped_column(String(64), primary_key=True)
    lockout_until: Mapped[datetime | None]
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class JobRunRow(Base):
    """One run of a scheduled job."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started_at", "job", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # "running", "ok", "failed", "skipped".
    outcome: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, server_default="")
