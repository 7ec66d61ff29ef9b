"""A door on the packaged model, full and fast: unseen photos of an enrolled person are
granted, a stranger is denied, and switching variant re-embeds instead of mixing spaces."""

from __future__ import annotations

import json
from pathlib import Path

from daemon_site import person, start_daemon, with_sections
from mqtt_support import Listener

from facegate.config import parse_config
from facegate.daemon.topics import DoorTopics
from facegate.model.manifest import Manifest

TOPICS = DoorTopics("facegate", "front_door")
PERSON, STRANGER = "Colin_Powell", "George_W_Bush"


def _decide(watcher: Listener, image: Path) -> dict:
    watcher.publish(TOPICS.image, image.read_bytes())
    return json.loads(watcher.wait_for(TOPICS.access)[1])


def test_full_and_fast_variants_at_the_door(tmp_path: Path, mqtt_broker, lfw_images: Path) -> None:
    from facegate.enrollment.enroll import enroll
    from facegate.enrollment.loading import load_tools
    from facegate.model.bundle import DEFAULT_MODEL_DIR, load_model_dir
    from facegate.storage.registry import open_registry

    photos = person(lfw_images, PERSON, 8)
    config = parse_config(
        {
            "storage": {"data_dir": str(tmp_path / "data")},
            "mqtt": {"host": mqtt_broker.host, "port": mqtt_broker.port},
            "source": {"kind": "none"},
            "decision": {"burst_frames": 1},
            "lockout": {"enabled": False},
        }
    )
    registry = open_registry(config.storage)
    pipeline, model = load_tools(registry, config)
    enroll(registry, pipeline, model, "Colin", photos[:5], config)
    registry.close()
    manifest = Manifest.read(DEFAULT_MODEL_DIR)
    for variant, thresholds in (
        ("fast", manifest.variants["fast"].thresholds),
        ("full", manifest.thresholds),
    ):
        door = with_sections(config, model={"variant": variant})
        watcher = Listener(mqtt_broker, [TOPICS.access])
        daemon, thread = start_daemon(door)
        try:
            for unseen in photos[5:]:
                event = _decide(watcher, unseen)
                assert (event["event_type"], event["user"]) == ("granted", "Colin"), event
                assert event["thresholds"]["detection"] == thresholds.detection
            event = _decide(watcher, person(lfw_images, STRANGER, 1)[0])
            assert (event["event_type"], event["user"]) == ("denied", None), event
        finally:
            daemon.stop()
            thread.join(30)
            watcher.close()
    spaces = {load_model_dir(None, "auto", variant).space for variant in ("full", "fast")}
    assert len(spaces) == 2
    registry = open_registry(config.storage)
    try:
        # Both variants' embeddings of the five gallery images are stored, side by side: the
        # fast door embedded the galleries in its own space rather than reuse the full ones.
        for space in spaces:
            assert len(registry.gallery_matrix(space).user_ids) == 5
    finally:
        registry.close()
