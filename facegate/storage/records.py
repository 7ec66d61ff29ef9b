"""Domain records the registry hands out: frozen dataclasses and numpy arrays, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np


@dataclass(frozen=True)
class User:
    """A person in the registry; ``schedule`` is canonical weekly-schedule text or None."""

    id: int
    name: str
    display_name: str
    active: bool
    valid_from: datetime | None
    valid_until: datetime | None
    schedule: str | None
    gallery_consent: bool
    created_at: datetime
    updated_at: datetime
    image_count: int = 0


Landmarks = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class GalleryImage:
    """One stored face image of a user; ``path`` is relative to the data directory.

    ``landmarks`` are (x, y) pixels of the stored image in ``Landmark`` order: the image is a
    canonical chip (``facegate.face.align.canonical_chip``) any model's crop is re-derived
    from. None marks a legacy crop, stored aligned for the model that enrolled it.
    """

    id: int
    user_id: int
    sha256: str
    path: str
    quality: float
    source: str
    added_at: datetime
    landmarks: Landmarks | None = None

    @property
    def legacy(self) -> bool:
        """True for a crop aligned for one model (no landmarks): other models resize it."""
        return self.landmarks is None


@dataclass(frozen=True)
class NewGalleryImage:
    """An image about to be stored: PNG bytes with their sha256, quality in [0, 1], embedding.

    ``embedding`` is (D,) float32 from the model named by the call that stores it;
    ``landmarks`` (K, 2) pixels of the image when it is a canonical chip (None: a crop
    aligned for that model, the legacy form).
    """

    sha256: str
    png: bytes
    quality: float
    source: str
    embedding: np.ndarray
    landmarks: np.ndarray | None = None


@dataclass(frozen=True)
class GalleryMatrix:
    """Every gallery embedding of one model, stacked for vectorised matching.

    ``vectors`` (N, D) float32; ``user_ids`` and ``image_ids`` (N,) int64 name each row's
    owner and image; ``users`` maps user id to the User (only users with at least one row).
    """

    model_sha256: str
    vectors: np.ndarray
    user_ids: np.ndarray
    image_ids: np.ndarray
    users: dict[int, User] = field(default_factory=dict)

    def rows_of(self, user_id: int) -> np.ndarray:
        """The (M, D) embeddings of one user."""
        return self.vectors[self.user_ids == user_id]


@dataclass(frozen=True)
class ModelVersion:
    """A model known to the registry; ``status`` is candidate, active, retired, rejected or
    rolled_back and ``why`` says what decided it."""

    id: int
    sha256: str
    name: str
    path: str
    metrics: dict[str, Any]
    active: bool
    created_at: datetime
    promoted_at: datetime | None
    status: str
    why: str


@dataclass(frozen=True)
class AccessRecord:
    """One access decision: ``score`` in [0, 1], ``latency_ms`` milliseconds, UTC ``time``."""

    id: int
    time: datetime
    door: str
    trigger: str
    user_id: int | None
    candidate: str | None
    score: float | None
    decision: str
    reason: str
    latency_ms: float | None
    decision_id: str
    frames: int
    capture_path: str | None


@dataclass(frozen=True)
class OutboxMessage:
    """An MQTT message to deliver: ``payload`` bytes, ``qos`` 0-2."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True)
class OutboxEvent:
    """A queued message with its queue id (delivery order) and delivery attempts so far."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created_at: datetime
    attempts: int


@dataclass(frozen=True)
class DoorState:
    """What a door must remember across a restart: lockout end and small JSON values."""

    door: str
    lockout_until: datetime | None
    data: dict[str, Any]
    updated_at: datetime | None


@dataclass(frozen=True)
class JobRun:
    """One run of a scheduled job; ``outcome`` is running, ok, failed or skipped."""

    id: int
    job: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    message: str
