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

# Decisions 0 and 3 were recorded at once (both events queued); 1 and 2 were held while the
# broker took their access events but not their retained ones.
QUEUED_AFTER_RECOVERY = [
    ("access", b"0"),
    ("last_access", b"0"),
    ("last_access", b"1"),
    ("last_access", b"2"),
    ("access", b"3"),
    ("last_access", b"3"),
]


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
    assert queued == QUEUED_AFTER_RECOVERY
    assert health == ["registry_unavailable", "registry_restored"]
    counts = stats.snapshot()["counts"]
    assert counts["registry_errors"] == 3 and counts["records_recovered"] == 2
    registry.close()


def _lock(tmp_path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(tmp_path / "registry.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_held_rows_survive_a_restart_through_the_spool(tmp_path: Path) -> None:
    from facegate.daemon.spool import DecisionSpool, spool_path

    registry = open_registry(StorageConfig(data_dir=tmp_path, busy_timeout_s=0.1))
    spool = DecisionSpool(spool_path(tmp_path, "front_door"))
    sent: list[OutboxMessage] = []

    def send(message: OutboxMessage) -> bool:
        sent.append(message)
        return message.retain is False

    start = datetime.now(UTC)
    first = DecisionRecorder(registry, send, DaemonStats(), lambda *_: None, spool)
    assert first.record(**_fields(0, start))
    assert not spool.path.exists()  # nothing held, nothing spooled
    other = _lock(tmp_path)
    assert not first.record(**_fields(1, start))
    assert not first.record(**_fields(2, start))
    assert [f["decision_id"] for f in spool.load()] == ["d0001", "d0002"]
    assert spool.path.stat().st_mode & 0o777 == 0o600
    # The process dies here (no flush); the registry comes back; the door starts again.
    other.execute("ROLLBACK")
    other.close()
    del first
    stats = DaemonStats()
    second = DecisionRecorder(registry, send, stats, lambda *_: None, spool)
    assert second.pending == 2
    assert second.record(**_fields(3, start))
    rows = [r.decision_id for r in reversed(registry.access_log(limit=10))]
    assert rows == ["d0000", "d0001", "d0002", "d0003"]
    assert not spool.path.exists()
    # The held decisions' access events went out once, before the restart; what the broker
    # refused then (the retained ones) is queued with the rows now.
    assert [m.payload for m in sent] == [b"1", b"1", b"2", b"2"]
    queued = [(e.topic.rsplit("/", 1)[1], e.payload) for e in registry.peek_outbox(20)]
    assert queued == QUEUED_AFTER_RECOVERY
    assert stats.snapshot()["counts"]["records_recovered"] == 2
    registry.close()


def test_a_row_recorded_before_the_crash_is_not_written_twice(tmp_path: Path) -> None:
    """The registry took the row, the process died before the spool was rewritten."""
    from facegate.daemon.spool import DecisionSpool, spool_path

    registry = open_registry(StorageConfig(data_dir=tmp_path, busy_timeout_s=0.1))
    spool = DecisionSpool(spool_path(tmp_path, "front_door"))
    start = datetime.now(UTC)
    spool.append([_fields(1, start), _fields(2, start)])
    with spool.path.open("a") as f:
        f.write('{"door": "front_door", "decision_id": "d0003", "trunc')  # cut by the crash
    registry.log_access(**_fields(1, start))
    recorder = DecisionRecorder(registry, lambda m: True, DaemonStats(), lambda *_: None, spool)
    assert recorder.pending == 2
    assert recorder.flush()
    rows = [r.decision_id for r in reversed(registry.access_log(limit=10))]
    assert rows == ["d0001", "d0002"]
    assert not spool.path.exists()
    registry.close()


def test_a_spool_that_cannot_be_written_still_holds_rows_in_memory(tmp_path: Path) -> None:
    from facegate.daemon.spool import DecisionSpool

    registry = open_registry(StorageConfig(data_dir=tmp_path, busy_timeout_s=0.1))
    (tmp_path / "not_a_dir").write_text("")
    spool = DecisionSpool(tmp_path / "not_a_dir" / "front_door-decisions.jsonl")
    stats = DaemonStats()
    recorder = DecisionRecorder(registry, lambda m: True, stats, lambda *_: None, spool)
    other = _lock(tmp_path)
    assert not recorder.record(**_fields(1, datetime.now(UTC)))
    assert stats.snapshot()["counts"]["spool_errors"] == 1
    other.execute("ROLLBACK")
    other.close()
    assert recorder.flush()
    assert [r.decision_id for r in registry.access_log(limit=10)] == ["d0001"]
    registry.close()
