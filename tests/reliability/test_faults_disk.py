"""Disk full while writing a capture: the decision still happens, is published and logged;
the failure is counted; no partial file is left; captures resume once there is space."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from daemon_site import person, start_daemon, with_sections
from mqtt_support import Listener
from reliability_support import fill, integrity, namespace_mount

from facegate.config import FacegateConfig
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics("facegate", "front_door")


def test_full_disk_capture(
    site: FacegateConfig, mqtt_broker, lfw_images: Path, tmp_path: Path
) -> None:
    config = with_sections(
        site, capture={"enabled": True, "publish": True}, decision={"grant_cooldown_s": 0}
    )
    ada = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
    db = config.storage.data_dir / "registry.db"
    with namespace_mount(tmp_path / "small", "-t tmpfs -o size=16k") as small:
        # The captures folder lives on a 16 KiB filesystem that is already full; today's
        # folder exists, so the capture file itself is what cannot be written.
        (small / datetime.now(UTC).strftime("%Y-%m-%d")).mkdir()
        fill(small)
        (config.storage.data_dir / "captures").symlink_to(small)
        watcher = Listener(mqtt_broker, [TOPICS.access, TOPICS.capture])
        daemon, thread = start_daemon(config)
        try:
            watcher.publish(TOPICS.image, ada)
            full = json.loads(watcher.wait_for(TOPICS.access, timeout=30)[1])
            # The frame still goes out on the capture topic: only the disk copy failed.
            watcher.wait_for(TOPICS.capture, timeout=10)
            counts = daemon.stats.snapshot()["counts"]
            leftovers = sorted(p.name for p in small.rglob("*") if p.is_file())
            (small / "filler").unlink()  # space again
            watcher.publish(TOPICS.image, ada)
            freed = json.loads(watcher.wait_for(TOPICS.access, timeout=30)[1])
            saved = sorted(p.name for p in small.rglob("*.jpg"))
        finally:
            daemon.stop()
            thread.join(30)
            watcher.close()
    assert (full["event_type"], full["user"]) == ("granted", "Ada")
    assert counts["capture_errors"] == 1
    assert counts.get("worker_errors", 0) == 0
    assert leftovers == ["filler"], "a partial capture was left on the full disk"
    assert freed["event_type"] == "granted"
    assert saved == [f"{freed['decision_id']}.jpg"]
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT decision_id, capture_path FROM access_log"))
    assert rows[full["decision_id"]] is None  # logged, without a capture
    assert rows[freed["decision_id"]].endswith(f"{freed['decision_id']}.jpg")
    assert integrity(db) == "ok"
