"""Secrets never reach the logs or the access log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from daemon_site import person, start_daemon, with_sections
from mqtt_support import Listener

from facegate.config import FacegateConfig
from facegate.daemon.topics import DoorTopics

SECRET = "S3cret-Known-Str1ng"
TOPICS = DoorTopics("facegate", "front_door")


def test_password_never_logged(
    site: FacegateConfig, mqtt_broker, lfw_images: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from facegate.storage.registry import open_registry

    config = with_sections(
        site,
        mqtt={"username": "facegate", "password": SECRET},
        source={"kind": "url", "url": f"rtsp://admin:{SECRET}@127.0.0.1:9/stream"},
        logging={"level": "DEBUG"},
    )
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())
    watcher = Listener(mqtt_broker, [f"{TOPICS.base}/#"])
    with caplog.at_level(logging.DEBUG):
        daemon, thread = start_daemon(config)
        try:
            watcher.publish(TOPICS.image, person(lfw_images, "Colin_Powell", 1)[0].read_bytes())
            event = watcher.wait_for(TOPICS.access)[1]
            health = watcher.wait_for(TOPICS.health, timeout=30)[1]  # the camera URL failed
        finally:
            daemon.stop()
            thread.join(30)
            watcher.close()
    assert SECRET.encode() not in event and SECRET.encode() not in health
    assert json.loads(health)["event"] == "source_lost"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    # The camera URL is logged (that is how an installer debugs it), without its password.
    assert "rtsp://127.0.0.1:9/stream" in logged
    assert SECRET not in logged
    registry = open_registry(site.storage)
    rows = registry.access_log(limit=10)
    registry.close()
    assert rows and all(SECRET not in repr(r) for r in rows)
