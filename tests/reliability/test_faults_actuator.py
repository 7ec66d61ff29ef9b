"""The actuator command hangs or fails: the door stays shut, the access log says so, the
program (and what it started) is killed at the deadline, and later decisions go on."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from daemon_site import person, start_daemon, with_sections
from mqtt_support import Listener

from facegate.config import FacegateConfig
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics("facegate", "front_door")
TIMEOUT_S = 0.5

RELAY = """#!/bin/sh
# A relay program whose behaviour the test picks: hang (with a child), fail, or work.
echo $$ >> "{pids}"
case "$(cat "{mode}")" in
  hang) sleep 60 & echo $! >> "{pids}"; wait ;;
  fail) echo "relay board not found" >&2; exit 3 ;;
  *) exit 0 ;;
esac
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its parent) counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_hanging_and_failing_actuator(
    site: FacegateConfig, mqtt_broker, lfw_images: Path, tmp_path: Path
) -> None:
    mode, pids = tmp_path / "mode", tmp_path / "pids"
    relay = tmp_path / "relay.sh"
    relay.write_text(RELAY.format(mode=mode, pids=pids))
    relay.chmod(0o755)
    mode.write_text("hang")
    config = with_sections(
        site,
        actuator={"kind": "command", "command": [str(relay)], "pulse_s": 0, "timeout_s": TIMEOUT_S},
        lockout={"enabled": False},
        decision={"grant_cooldown_s": 0},
    )
    ada = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
    stranger = person(lfw_images, "George_W_Bush", 1)[0].read_bytes()
    watcher = Listener(mqtt_broker, [TOPICS.access, TOPICS.lock_state])
    daemon, thread = start_daemon(config)
    try:
        watcher.wait_for(TOPICS.lock_state, b"LOCKED")
        watcher.publish(TOPICS.image, ada)
        hung = json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])
        # The strike was reported open while the program ran, then shut again.
        watcher.wait_for(TOPICS.lock_state, b"UNLOCKED")
        watcher.wait_for(TOPICS.lock_state, b"LOCKED")
        started = time.monotonic()
        watcher.publish(TOPICS.image, stranger)
        after = json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])
        next_decision_s = time.monotonic() - started
        mode.write_text("fail")
        watcher.publish(TOPICS.lock_command, "UNLOCK")
        failed = json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])
        mode.write_text("ok")
        watcher.publish(TOPICS.image, ada)
        works = json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])
        counts = daemon.stats.snapshot()["counts"]
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()
    assert (hung["event_type"], hung["reason"], hung["user"]) == ("denied", "error", "Ada")
    assert hung["latency_ms"] < (TIMEOUT_S + 5) * 1000
    assert after["event_type"] == "denied" and after["reason"] != "error"
    assert next_decision_s < 10, "the worker stayed blocked after the actuator timed out"
    assert (failed["event_type"], failed["reason"]) == ("denied", "error")
    assert (works["event_type"], works["reason"]) == ("granted", "granted")
    assert counts["actuator_failures"] == 2
    # The hung program and the child it started were killed, not left holding the relay.
    started_pids = [int(line) for line in pids.read_text().split()]
    assert len(started_pids) == 4  # hang (+ its child), fail, ok
    assert not [pid for pid in started_pids if _alive(pid)]
    db = config.storage.data_dir / "registry.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT decision_id, decision, reason FROM access_log").fetchall()
    logged = {row[0]: row[1:] for row in rows}
    assert logged[hung["decision_id"]] == ("denied", "error")
    assert logged[failed["decision_id"]] == ("denied", "error")
    assert logged[works["decision_id"]] == ("granted", "granted")
