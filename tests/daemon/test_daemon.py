"""The daemon end to end: a real broker, a real registry, real LFW faces, a tiny real model."""

from __future__ import annotations

import json
import time
from pathlib import Path

from daemon_site import folder_site_config, person, start_daemon, with_sections, write_config
from mqtt_support import Listener

from facegate.config import FacegateConfig
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics("facegate", "front_door")


def _until_granted(watcher: Listener, image: Path, within_s: float, pause_s: float) -> dict:
    """Publish ``image`` until a decision grants it or ``within_s`` passes; the last event."""
    deadline = time.monotonic() + within_s
    event: dict = {}
    while time.monotonic() < deadline:
        watcher.publish(TOPICS.image, image.read_bytes())
        event = json.loads(watcher.wait_for(TOPICS.access)[1])
        if event["event_type"] == "granted":
            break
        time.sleep(pause_s)
    return event


def test_grant_deny_events_and_access_log(site: FacegateConfig, mqtt_broker, lfw_images) -> None:
    from facegate.storage.registry import open_registry

    watcher = Listener(mqtt_broker, [f"{TOPICS.base}/#", "homeassistant/#"])
    daemon, thread = start_daemon(site)
    try:
        watcher.wait_for(TOPICS.availability, b"online")
        watcher.wait_for("homeassistant/lock/facegate_front_door/door/config")
        enrolled = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
        watcher.publish(TOPICS.image, enrolled)
        granted = json.loads(watcher.wait_for(TOPICS.access)[1])
        assert granted["event_type"] == "granted", json.dumps(granted)
        assert granted["user"] == "Ada"
        assert granted["trigger"]["kind"] == "image"
        assert set(granted) >= {
            "event_type",
            "user",
            "reason",
            "score",
            "thresholds",
            "trigger",
            "frames",
            "latency_ms",
            "decision_id",
            "timestamp",
        }
        stranger = person(lfw_images, "George_W_Bush", 1)[0].read_bytes()
        watcher.publish(TOPICS.image, stranger)
        denied = json.loads(watcher.wait_for(TOPICS.access)[1])
        assert denied["event_type"] == "denied"
        assert denied["user"] is None
        assert denied["reason"] in ("unknown_face", "below_threshold")
        watcher.publish(TOPICS.trigger, b"{not json")
        watcher.publish(TOPICS.image, b"this is not an image")
        state = json.loads(watcher.wait_for(TOPICS.state, timeout=5)[1])
        for _ in range(5):
            if state["bad_input"].get("bad_image"):
                break
            state = json.loads(watcher.wait_for(TOPICS.state, timeout=5)[1])
        assert state["bad_input"] == {"malformed_trigger": 1, "bad_image": 1}
    finally:
        daemon.stop()
        thread.join(30)
    watcher.wait_for(TOPICS.availability, b"offline")
    watcher.close()
    registry = open_registry(site.storage)
    rows = registry.access_log(limit=10)
    registry.close()
    assert [r.reason for r in rows] == [denied["reason"], "granted"]
    assert rows[1].decision_id == granted["decision_id"]
    assert rows[1].candidate == "Ada"


def test_lockout_engages_and_survives_restart(site: FacegateConfig, mqtt_broker, lfw_images):
    watcher = Listener(mqtt_broker, [f"{TOPICS.base}/#"])
    daemon, thread = start_daemon(site)
    stranger = person(lfw_images, "George_W_Bush", 1)[0].read_bytes()
    try:
        for _ in range(3):
            watcher.publish(TOPICS.image, stranger)
            assert json.loads(watcher.wait_for(TOPICS.access)[1])["event_type"] == "denied"
        watcher.wait_for(TOPICS.lockout, b"ON")
        watcher.publish(TOPICS.image, stranger)
        event = json.loads(watcher.wait_for(TOPICS.access)[1])
        assert (event["event_type"], event["reason"]) == ("locked_out", "locked_out")
    finally:
        daemon.stop()
        thread.join(30)
    daemon, thread = start_daemon(site)
    try:
        watcher.publish(TOPICS.image, person(lfw_images, "Colin_Powell", 1)[0].read_bytes())
        event = json.loads(watcher.wait_for(TOPICS.access)[1])
        assert event["event_type"] == "locked_out"
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()


def test_lockout_expires(site: FacegateConfig, mqtt_broker, lfw_images) -> None:
    config = with_sections(site, lockout={"max_failures": 2, "duration_minutes": 0.05})
    watcher = Listener(mqtt_broker, [f"{TOPICS.base}/#"])
    daemon, thread = start_daemon(config)
    try:
        for _ in range(2):
            watcher.publish(TOPICS.image, person(lfw_images, "George_W_Bush", 1)[0].read_bytes())
            watcher.wait_for(TOPICS.access)
        watcher.wait_for(TOPICS.lockout, b"ON")
        watcher.pending.clear()  # forget the OFF published when the daemon connected
        watcher.wait_for(TOPICS.lockout, b"OFF", timeout=20)
        watcher.publish(TOPICS.image, person(lfw_images, "Colin_Powell", 1)[0].read_bytes())
        event = json.loads(watcher.wait_for(TOPICS.access)[1])
        assert (event["event_type"], event["user"]) == ("granted", "Ada")
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()


def test_broker_outage_loses_no_decision(
    tmp_path: Path, persistent_broker, exact_model_dir: Path, lfw_images: Path
) -> None:
    """Decisions made while the broker is down reach a subscriber, in order, once it is back."""
    from facegate.storage.registry import open_registry

    config = folder_site_config(tmp_path, persistent_broker, exact_model_dir, lfw_images, fps=4)
    watcher = Listener(persistent_broker, [TOPICS.access], client_id="outage-watcher")
    daemon, thread = start_daemon(config)
    received: list[str] = []
    try:
        for _ in range(2):
            received.append(
                json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])["decision_id"]
            )
        persistent_broker.stop()
        time.sleep(3)  # decisions go on meanwhile, into the outbox
        persistent_broker.start()
        registry = open_registry(config.storage)
        deadline = time.monotonic() + 30
        while registry.outbox_depth() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        daemon.stop()
        thread.join(30)
    logged = [r.decision_id for r in reversed(registry.access_log(limit=1000))]
    assert registry.outbox_depth() == 0
    registry.close()
    assert len(logged) >= 6
    # QoS 1 is at-least-once: an event in flight when the broker went down may arrive twice;
    # subscribers deduplicate by decision_id. Nothing may be missing or out of order.
    unique = list(dict.fromkeys(received))
    while len(unique) < len(logged):
        received.append(json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])["decision_id"])
        unique = list(dict.fromkeys(received))
    watcher.close()
    assert unique == logged


def test_remote_unlock_and_failing_actuator(site: FacegateConfig, mqtt_broker, lfw_images) -> None:
    from facegate.storage.registry import open_registry

    config = with_sections(site, actuator={"kind": "command", "command": ["/bin/false"]})
    watcher = Listener(mqtt_broker, [f"{TOPICS.base}/#"])
    daemon, thread = start_daemon(config)
    try:
        watcher.wait_for(TOPICS.lock_state, b"LOCKED")
        watcher.publish(TOPICS.lock_command, "UNLOCK")
        event = json.loads(watcher.wait_for(TOPICS.access)[1])
        # The relay program failed: the door stays shut and the log says so.
        assert (event["event_type"], event["reason"]) == ("denied", "error")
        assert event["trigger"] == {"kind": "home_assistant", "source": "lock"}
        watcher.publish(TOPICS.image, person(lfw_images, "Colin_Powell", 1)[0].read_bytes())
        event = json.loads(watcher.wait_for(TOPICS.access)[1])
        assert (event["event_type"], event["reason"], event["user"]) == ("denied", "error", "Ada")
    finally:
        daemon.stop()
        thread.join(30)
    config = with_sections(
        site, actuator={"kind": "command", "command": ["/bin/true"], "pulse_s": 0.2}
    )
    daemon, thread = start_daemon(config)
    try:
        watcher.publish(TOPICS.lock_command, "UNLOCK")
        event = json.loads(watcher.wait_for(TOPICS.access)[1])
        assert (event["event_type"], event["reason"]) == ("granted", "remote_unlock")
        watcher.wait_for(TOPICS.lock_state, b"UNLOCKED")
        watcher.wait_for(TOPICS.lock_state, b"LOCKED")
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()
    registry = open_registry(site.storage)
    reasons = [r.reason for r in registry.access_log(limit=5)]
    registry.close()
    assert reasons == ["remote_unlock", "error", "error"]


def test_captures_stay_off_unless_enabled(site: FacegateConfig, mqtt_broker, lfw_images) -> None:
    import stat

    face = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
    watcher = Listener(mqtt_broker, [f"{TOPICS.base}/#", "homeassistant/image/#"])
    for capture in ({}, {"enabled": True}, {"enabled": True, "publish": True}):
        daemon, thread = start_daemon(with_sections(site, capture=capture))
        try:
            _, payload, _ = watcher.wait_for(
                "homeassistant/image/facegate_front_door/last_capture/config"
            )
            assert json.loads(payload)["enabled_by_default"] is bool(capture.get("publish"))
            watcher.publish(TOPICS.image, face)
            watcher.wait_for(TOPICS.access)
            if capture.get("publish"):
                _, jpeg, retained = watcher.wait_for(TOPICS.capture)
                assert jpeg[:2] == b"\xff\xd8" and not retained
        finally:
            daemon.stop()
            thread.join(30)
    assert all(t != TOPICS.capture for t, _, _ in watcher.pending)
    watcher.close()
    captures = sorted((site.storage.data_dir / "captures").rglob("*.jpg"))
    assert len(captures) == 2  # the second and third runs only
    for path in captures:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_cli_daemon_sigterm_and_sigkill(site: FacegateConfig, mqtt_broker, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    config_file = write_config(site, tmp_path / "facegate.toml")
    watcher = Listener(mqtt_broker, [TOPICS.availability])
    for sig, code in ((signal.SIGTERM, 0), (signal.SIGKILL, -signal.SIGKILL)):
        proc = subprocess.Popen(
            [sys.executable, "-m", "facegate", "run", "--config", str(config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            watcher.wait_for(TOPICS.availability, b"online", timeout=90)
            proc.send_signal(sig)
            assert proc.wait(30) == code
            watcher.wait_for(TOPICS.availability, b"offline")
        finally:
            proc.kill()
            proc.wait()
    watcher.close()


def test_enrollment_while_running_is_picked_up(
    site: FacegateConfig, mqtt_broker, lfw_images: Path
) -> None:
    from facegate.enrollment.enroll import enroll
    from facegate.enrollment.loading import load_tools
    from facegate.storage.registry import open_registry

    newcomer = person(lfw_images, "Tony_Blair", 3)
    watcher = Listener(mqtt_broker, [TOPICS.access])
    daemon, thread = start_daemon(with_sections(site, lockout={"enabled": False}))
    try:
        watcher.publish(TOPICS.image, newcomer[0].read_bytes())
        assert json.loads(watcher.wait_for(TOPICS.access)[1])["event_type"] == "denied"
        registry = open_registry(site.storage)
        pipeline, model = load_tools(registry, site)
        enroll(registry, pipeline, model, "Tony", newcomer, site)
        registry.close()
        event = _until_granted(watcher, newcomer[0], within_s=30, pause_s=2)
        assert (event["event_type"], event["user"]) == ("granted", "Tony")
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()


def test_a_cli_change_reaches_the_door_at_once(
    site: FacegateConfig, mqtt_broker, lfw_images: Path, tmp_path: Path, monkeypatch
) -> None:
    """The CLI tells the doors over MQTT that it changed the registry: with the poll an hour
    away, an enrollment is served at once; a read-only command sends nothing."""
    from facegate.cli.main import main
    from facegate.daemon import app

    monkeypatch.setattr(app, "GALLERY_POLL_S", 3600.0)
    config = with_sections(site, lockout={"enabled": False})
    config_file = write_config(config, tmp_path / "facegate.toml")
    newcomer = person(lfw_images, "Tony_Blair", 3)
    watcher = Listener(mqtt_broker, [TOPICS.access, TOPICS.registry_changed])
    daemon, thread = start_daemon(config)
    try:
        watcher.publish(TOPICS.image, newcomer[0].read_bytes())
        assert json.loads(watcher.wait_for(TOPICS.access)[1])["event_type"] == "denied"
        assert main(["--config", str(config_file), "users", "list"]) == 0
        assert main(["--config", str(config_file), "enroll", "Tony", *map(str, newcomer)]) == 0
        watcher.wait_for(TOPICS.registry_changed)
        event = _until_granted(watcher, newcomer[0], within_s=10, pause_s=0.5)
        assert (event["event_type"], event["user"]) == ("granted", "Tony")
        counts = daemon.stats.snapshot()["counts"]
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()
    # One notice: the enrollment's; listing users changed nothing and said nothing.
    assert counts["registry_notices"] == 1
    assert counts["gallery_reloads"] >= 1
