"""The real daemon behind deploy/mosquitto's ACL: it logs in with the systemd credential,
publishes availability and discovery, and acts on Home Assistant's unlock and the doorbell's
trigger, which the ACL lets through."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from deploy_support import PASSWORDS
from mqtt_support import Listener

from facegate.config import parse_config
from facegate.daemon.app import FacegateDaemon
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics("facegate", "front_door")


@pytest.mark.slow
def test_daemon_under_the_acl(
    tmp_path: Path, acl_broker, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt_password").write_text(PASSWORDS["facegate"] + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = parse_config(
        {
            "storage": {"data_dir": str(tmp_path / "data")},
            "model": {"path": str(tiny_model_dir)},
            "mqtt": {"host": acl_broker.host, "port": acl_broker.port, "username": "facegate"},
            "source": {"kind": "none"},
            "actuator": {"kind": "none", "pulse_s": 0.2},
        }
    )
    ha = Listener(
        acl_broker,
        ["facegate/#", "homeassistant/#"],
        username="homeassistant",
        password=PASSWORDS["homeassistant"],
    )
    bell = Listener(acl_broker, [], username="doorbell", password=PASSWORDS["doorbell"])
    daemon = FacegateDaemon(config)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        assert daemon.ready.wait(120), "the daemon did not become ready"
        ha.wait_for(TOPICS.availability, b"online")
        ha.wait_for("homeassistant/lock/facegate_front_door/door/config")
        # Home Assistant opens the door: the daemon reads lock/set and reports it.
        ha.publish(TOPICS.lock_command, "UNLOCK")
        event = json.loads(ha.wait_for(TOPICS.access, timeout=20)[1])
        assert event["event_type"] == "granted" and event["reason"] == "remote_unlock"
        assert event["trigger"]["kind"] == "home_assistant"
        ha.wait_for(TOPICS.lock_state, b"UNLOCKED")
        # The doorbell rings: the daemon reads the trigger and decides (no camera: no face).
        bell.publish(TOPICS.trigger, '{"source": "doorbell"}')
        event = json.loads(ha.wait_for(TOPICS.access, timeout=20)[1])
        assert event["trigger"]["source"] == "doorbell"
        assert event["event_type"] == "denied" and event["trigger"]["kind"] == "mqtt"
    finally:
        daemon.stop()
        thread.join(30)
        ha.wait_for(TOPICS.availability, b"offline")
        ha.close()
        bell.close()
