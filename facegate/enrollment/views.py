"""JSON-ready views of registry records, shared by the CLI listings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from facegate.storage.records import GalleryImage, User


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 text of an aware datetime, or None."""
    return moment.isoformat() if moment is not None else None


def user_view(user: User) -> dict[str, Any]:
    """A user as a JSON object."""
    return {
        "id": user.id,
        "name": user.name,
        "display_name": user.display_name,
        "active": user.active,
        "valid_from": iso(user.valid_from),
        "valid_until": iso(user.valid_until),
        "schedule": user.schedule,
        "gallery_consent": user.gallery_consent,
        "images": user.image_count,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }


def image_view(image: GalleryImage) -> dict[str, Any]:
    """A gallery image as a JSON object (the path is relative to the data directory)."""
    return {
        "id": image.id,
        "sha256": image.sha256,
        "path": image.path,
        "quality": round(image.quality, 4),
        "source": image.source,
        "added_at": iso(image.added_at),
        # A crop aligned for the enrolling model (schema 0001): other models get it resized.
        "legacy_crop": image.legacy,
    }
