"""Retention on a real SQLite registry and real files: old captures and log rows go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from facegate.config import FacegateConfig, parse_config
from facegate.scheduler.retention import apply_retention
from facegate.storage.registry import Registry, open_registry

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> FacegateConfig:
    """Captures kept 7 days, the log 30."""
    return parse_config(
        {
            "storage": {"data_dir": str(tmp_path / "data")},
            "capture": {"retention_days": 7, "access_log_retention_days": 30},
        }
    )


@pytest.fixture
def registry(config: FacegateConfig) -> Iterator[Registry]:
    """An empty registry."""
    reg = open_registry(config.storage)
    try:
        yield reg
    finally:
        reg.close()


def _decision(registry: Registry, days_ago: float, name: str, with_file: bool = True) -> Path:
    when = NOW - timedelta(days=days_ago)
    relative = f"captures/{when:%Y-%m-%d}/{name}.jpg"
    path = Path(registry.data_dir) / relative
    if with_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"jpeg")
        os.utime(path, (when.timestamp(), when.timestamp()))
    registry.log_access(
        door="front_door",
        trigger="motion",
        decision="denied",
        reason="unknown_face",
        decision_id=name,
        time=when,
        capture_path=relative,
    )
    return path


def test_old_captures_and_rows_are_deleted(registry: Registry, config: FacegateConfig) -> None:
    fresh = _decision(registry, 1, "fresh")
    week_old = _decision(registry, 8, "week-old")
    month_old = _decision(registry, 40, "month-old")
    orphan = Path(registry.data_dir) / "captures" / "2026-05-01" / "orphan.jpg"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"jpeg")
    old = (NOW - timedelta(days=31)).timestamp()
    os.utime(orphan, (old, old))

    report = apply_retention(registry, config, now=NOW)

    assert report.captures_deleted == 3
    assert report.access_rows_deleted == 1
    assert fresh.exists()
    assert not week_old.exists() and not month_old.exists() and not orphan.exists()
    assert not orphan.parent.exists()  # an emptied day folder goes too
    rows = {r.decision_id: r for r in registry.access_log()}
    assert set(rows) == {"fresh", "week-old"}
    assert rows["fresh"].capture_path is not None
    assert rows["week-old"].capture_path is None  # the row stays, its capture is gone


def test_capture_paths_outside_the_data_dir_are_ignored(
    registry: Registry, config: FacegateConfig, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    registry.log_access(
        door="front_door",
        trigger="motion",
        decision="denied",
        reason="unknown_face",
        decision_id="evil",
        time=NOW - timedelta(days=10),
        capture_path="../victim.txt",
    )
    report = apply_retention(registry, config, now=NOW)
    assert victim.read_text() == "keep me"
    assert report.captures_deleted == 0


def test_nothing_to_do_is_fine(registry: Registry, config: FacegateConfig) -> None:
    report = apply_retention(registry, config, now=NOW)
    assert (report.captures_deleted, report.access_rows_deleted) == (0, 0)
