"""DecisionRecorder on a real SQLite registry locked by another connection."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from facegate.config import StorageConfig
from facegate.daemon.recorder import DecisionRecorder
from facegate.daemon.stats import DaemonStats
from facegate.storage.records import OutboxMessage
from facegate.storage.registry import open_registry


def _fields(i: int, start: datetime) -> dict:
    return {
        "door": "front_door",
        "trigger": "image",
        "decision": "denied",
        "reason": "unknown_face",
        "decision_id": f"d{i:04d}",
        "time": start + timedelta(seconds=i),
        "events": (
            OutboxMessage("facegate/front_door/access", f"{i}".encode(), 1, False),
            OutboxMessage("facegate/front_door/last_access", f"{i}".encode(), 1, True),
        ),
    }


def test_refused_rows_are_held_in_order_and_events_sent_once(tmp_path: Path) -> None:
    registry = open_registry(StorageConfig(data_dir=tmp_path, busy_timeout_s=0.1))
    stats = DaemonStats()
    health: list[str] = []
    sent: list[OutboxMessage] = []

    def send(message: OutboxMessage) -> bool:
        sent.append(message)
        return message.retain is False  # the broker takes the access event, not the retained one

    recorder = DecisionRecorder(registry, send, stats, lambda kind, msg: health.append(kind))
    start = datetime.now(UTC)
    assert recorder.record(**_fields(0, start))
    other = sqlite3.connect(tmp_path / "registry.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    assert not recorder.record(**_fields(1, start))
    assert not recorder.record(**_fields(2, start))
    assert recorder.pending == 2 and not recorder.flush()
    other.execute("ROLLBACK")
    other.close()
    assert recorder.record(**_fields(3, start))
    assert recorder.pending == 0
    rows = [r.decision_id for r in reversed(registry.access_log(limit=10))]
    assert rows == ["d0000", "d0001", "d0002", "d0003"]
    # Held decisions were announced once each; only what the broker refused stays queued.
    assert [m.payload for m in sent] == [b"1", b"1", b"2", b"2"]
    queued = [(e.topic.rsplit("/", 1)[1], e.payload) for e in registry.peek_outbox(20)]
    assert queued == [
        ("access", b"0"),
        ("last_access", b"0"),
        ("last_access", b"1"),
        ("last_access", b"2"),
        ("access", b"3"),
        ("last_access", b"3"),
    ]
    assert health == ["registry_unavailable", "registry_restored"]
    counts = stats.snapshot()["counts"]
    assert counts["registry_errors"] == 3 and counts["records_recovered"] == 2
    registry.close()
