"""Registry faults: locked by another writer, read-only, changed under the daemon.

The decision always happens; a grant needs the user's record as stored now (deny when it cannot
be read); a decision the registry refuses is held and written once it can be, and its events
are published at once without being sent twice; nothing already stored is damaged.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from daemon_site import person, start_daemon, with_sections, write_config
from mqtt_support import Listener
from reliability_support import integrity, namespace_mount, table_rows

from facegate.config import FacegateConfig
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics("facegate", "front_door")
LOCK_S = 4.0  # the other writer holds the lock this long: 8 busy timeouts


def _events(watcher: Listener, n: int, seen: list[dict] | None = None) -> list[dict]:
    """The next ``n`` new decisions; every event received (repeats too) is added to ``seen``.

    QoS 1 is at-least-once: an event whose outbox acknowledgement could not be stored (the
    registry was locked) is sent again, and subscribers deduplicate by decision_id.
    """
    seen = [] if seen is None else seen
    known = {e["decision_id"] for e in seen}
    new: list[dict] = []
    while len(new) < n:
        event = json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])
        seen.append(event)
        if event["decision_id"] not in known:
            known.add(event["decision_id"])
            new.append(event)
    return new


def _health(watcher: Listener, kind: str) -> dict:
    while True:
        event = json.loads(watcher.wait_for(TOPICS.health, timeout=20)[1])
        if event.get("event") == kind:
            return event


def test_locked_registry_decides_holds_the_rows_and_loses_none(
    site: FacegateConfig, mqtt_broker, lfw_images: Path
) -> None:
    config = with_sections(
        site, storage={"busy_timeout_s": 0.5}, lockout={"enabled": False}, heartbeat={}
    )
    db = config.storage.data_dir / "registry.db"
    ada = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
    stranger = person(lfw_images, "George_W_Bush", 1)[0].read_bytes()
    watcher = Listener(mqtt_broker, [TOPICS.access, TOPICS.health])
    daemon, thread = start_daemon(config)
    try:
        seen: list[dict] = []
        watcher.publish(TOPICS.image, ada)
        warm = _events(watcher, 1, seen)
        users_before = table_rows(db, "users")
        images_before = table_rows(db, "gallery_images")
        embeddings_before = table_rows(db, "embeddings")
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        locked_at = time.monotonic()
        for image in (ada, stranger, ada):
            watcher.publish(TOPICS.image, image)
        during = _events(watcher, 3, seen)
        assert time.monotonic() - locked_at < LOCK_S, "decisions waited for the lock"
        _health(watcher, "registry_unavailable")
        time.sleep(max(0.0, LOCK_S - (time.monotonic() - locked_at)))
        other.execute("ROLLBACK")
        other.close()
        _health(watcher, "registry_restored")
        watcher.publish(TOPICS.image, ada)
        after = _events(watcher, 1, seen)
        time.sleep(1.5)  # anything sent twice would arrive now
        seen += [json.loads(p) for t, p, _ in watcher.pending if t == TOPICS.access]
        counts = daemon.stats.snapshot()["counts"]
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()
    # Decisions kept happening: the enrolled user's policy could still be read (WAL readers
    # do not wait for a writer), the stranger was refused.
    assert [e["event_type"] for e in during] == ["granted", "denied", "granted"]
    assert counts["registry_errors"] >= 1
    assert counts["records_recovered"] == 3
    assert counts["registry_unavailable"] == counts["registry_restored"] == 1
    # The held decisions were published once each: what went out directly was not queued.
    sent = [e["decision_id"] for e in seen]
    assert all(sent.count(e["decision_id"]) == 1 for e in during)
    # Every decision is in the access log, in decision order, and nothing stored was damaged.
    ids = [e["decision_id"] for e in warm + during + after]
    with sqlite3.connect(db) as conn:
        logged = [r[0] for r in conn.execute("SELECT decision_id FROM access_log ORDER BY time")]
    assert logged == ids
    assert integrity(db) == "ok"
    assert table_rows(db, "users") == users_before
    assert table_rows(db, "gallery_images") == images_before
    assert table_rows(db, "embeddings") == embeddings_before
    assert table_rows(db, "outbox") == []


def test_rows_held_when_the_daemon_is_killed_are_written_at_the_next_start(
    site: FacegateConfig, mqtt_broker, lfw_images: Path, tmp_path: Path
) -> None:
    """SIGKILL while the registry refuses writes: the held decisions are in the spool file and
    the next start writes them to the access log, in order, before anything else."""
    import signal

    from facegate.daemon.spool import spool_path

    config = with_sections(site, storage={"busy_timeout_s": 0.5}, lockout={"enabled": False})
    config_file = write_config(config, tmp_path / "facegate.toml")
    db = config.storage.data_dir / "registry.db"
    spool = spool_path(config.storage.data_dir, config.door)
    ada = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
    stranger = person(lfw_images, "George_W_Bush", 1)[0].read_bytes()
    watcher = Listener(mqtt_broker, [TOPICS.access, TOPICS.health, TOPICS.availability])
    proc = subprocess.Popen(
        [sys.executable, "-m", "facegate", "--config", str(config_file), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    other = sqlite3.connect(db, isolation_level=None)
    try:
        watcher.wait_for(TOPICS.availability, b"online", timeout=60)
        other.execute("BEGIN IMMEDIATE")
        for image in (ada, stranger):
            watcher.publish(TOPICS.image, image)
        held = _events(watcher, 2)
        _health(watcher, "registry_unavailable")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        other.execute("ROLLBACK")
        other.close()
    ids = [e["decision_id"] for e in held]
    assert [json.loads(line)["decision_id"] for line in spool.read_text().splitlines()] == ids
    daemon, thread = start_daemon(config)
    try:
        deadline = time.monotonic() + 15
        while spool.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()
    assert not spool.exists()
    with sqlite3.connect(db) as conn:
        logged = [r[0] for r in conn.execute("SELECT decision_id FROM access_log ORDER BY id")]
    assert logged[-2:] == ids
    assert integrity(db) == "ok"


def test_a_user_disabled_while_running_is_refused_at_once(
    site: FacegateConfig, mqtt_broker, lfw_images: Path
) -> None:
    """The policy is read from the registry at decision time, not from the gallery cache."""
    from facegate.storage.registry import open_registry

    ada = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
    config = with_sections(site, decision={"grant_cooldown_s": 0})
    watcher = Listener(mqtt_broker, [TOPICS.access])
    daemon, thread = start_daemon(config)
    try:
        watcher.publish(TOPICS.image, ada)
        assert _events(watcher, 1)[0]["event_type"] == "granted"
        registry = open_registry(config.storage)
        registry.update_user("Ada", active=False)
        registry.close()
        watcher.publish(TOPICS.image, ada)  # well before the 5 s gallery poll
        event = _events(watcher, 1)[0]
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()
    assert (event["event_type"], event["reason"]) == ("denied", "disabled")


def test_read_only_registry_refuses_to_start_and_stays_intact(
    site: FacegateConfig, tmp_path: Path
) -> None:
    """A registry that cannot be written (read-only mount) stops start-up with one clear line
    and a non-zero exit (systemd sees it; the door stays shut), and is left as it was."""
    data = site.storage.data_dir
    db = data / "registry.db"
    before = {name: table_rows(db, name) for name in ("users", "gallery_images", "embeddings")}
    with namespace_mount(tmp_path / "ro", "--bind -o ro", str(data)) as read_only:
        config = with_sections(site, storage={"data_dir": str(read_only)})
        config_file = write_config(config, tmp_path / "facegate.toml")
        proc = subprocess.run(
            [sys.executable, "-m", "facegate", "run", "--config", str(config_file)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("facegate: error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert integrity(db) == "ok"
    assert {name: table_rows(db, name) for name in before} == before


def test_a_policy_that_cannot_be_read_denies(
    site: FacegateConfig, mqtt_broker, lfw_images: Path
) -> None:
    """With the users table out of reach (renamed by another writer, as a half-applied
    migration would), the enrolled face is recognised but the grant is refused: deny on doubt."""
    ada = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
    config = with_sections(site, decision={"grant_cooldown_s": 0}, lockout={"enabled": False})
    db = config.storage.data_dir / "registry.db"
    watcher = Listener(mqtt_broker, [TOPICS.access])
    daemon, thread = start_daemon(config)
    try:
        with sqlite3.connect(db) as other:
            other.execute("ALTER TABLE users RENAME TO users_away")
        watcher.publish(TOPICS.image, ada)
        refused = _events(watcher, 1)[0]
        with sqlite3.connect(db) as other:
            other.execute("ALTER TABLE users_away RENAME TO users")
        watcher.publish(TOPICS.image, ada)
        granted = _events(watcher, 1)[0]
        counts = daemon.stats.snapshot()["counts"]
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()
    assert (refused["event_type"], refused["reason"]) == ("denied", "error")
    with sqlite3.connect(db) as conn:
        logged = conn.execute(
            "SELECT decision, reason, candidate FROM access_log WHERE decision_id = ?",
            (refused["decision_id"],),
        ).fetchall()
    assert logged == [("denied", "error", "Ada")]  # recognised, yet refused
    assert counts["policy_unavailable"] == 1
    assert (granted["event_type"], granted["user"]) == ("granted", "Ada")
    assert integrity(db) == "ok"
