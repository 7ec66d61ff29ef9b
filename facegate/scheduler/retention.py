"""Retention: decision captures older than ``capture.retention_days`` and access-log rows
older than ``capture.access_log_retention_days`` are deleted.

Capture files are found two ways: through the access rows that name them, and by age on disk
under ``<data_dir>/captures`` (a file whose row was never written or is already gone).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from facegate.config import FacegateConfig
from facegate.storage.registry import Registry

logger = logging.getLogger(__name__)

CAPTURE_DIR = "captures"  # as facegate.daemon.captures writes them (not imported: cv2)


@dataclass(frozen=True)
class RetentionReport:
    """How many capture files and access-log rows were deleted."""

    captures_deleted: int
    access_rows_deleted: int

    def summary(self) -> str:
        """One line for the job log."""
        return (
            f"deleted {self.captures_deleted} captures and {self.access_rows_deleted} "
            "access-log rows"
        )


def _inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` when it stays inside ``root`` (a stored path is not trusted)."""
    target = (root / relative).resolve()
    return target if target.is_relative_to(root.resolve()) else None


def _delete(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _sweep_old_files(captures: Path, cutoff: datetime) -> int:
    """Delete capture files modified before ``cutoff`` and the day folders left empty."""
    if not captures.is_dir():
        return 0
    limit = cutoff.timestamp()
    removed = 0
    for day in sorted(p for p in captures.iterdir() if p.is_dir() and not p.is_symlink()):
        for item in day.iterdir():
            if item.is_file() and not item.is_symlink() and item.stat().st_mtime < limit:
                removed += _delete(item)
        with contextlib.suppress(OSError):  # a day folder still in use stays
            day.rmdir()
    return removed


def apply_retention(
    registry: Registry, config: FacegateConfig, now: datetime | None = None
) -> RetentionReport:
    """Delete old captures (files and their log references) and old access-log rows."""
    now = now or datetime.now(UTC)
    capture_cutoff = now - timedelta(days=config.capture.retention_days)
    log_cutoff = now - timedelta(days=config.capture.access_log_retention_days)
    data_dir = Path(registry.data_dir)
    deleted = 0
    for relative in registry.clear_captures_before(capture_cutoff):
        target = _inside(data_dir, relative)
        if target is None:
            logger.warning("retention: capture path %r is outside the data dir; ignored", relative)
            continue
        deleted += _delete(target)
    deleted += _sweep_old_files(data_dir / CAPTURE_DIR, capture_cutoff)
    # With a log retention shorter than the capture one, rows go first; their files are
    # then deleted by the age sweep once the capture retention has passed.
    rows = registry.delete_access_before(log_cutoff)
    report = RetentionReport(captures_deleted=deleted, access_rows_deleted=rows)
    if deleted or rows:
        logger.info("retention: %s", report.summary())
    return report
