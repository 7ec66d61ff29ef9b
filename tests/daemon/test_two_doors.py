"""Two doors of one site: one PostgreSQL registry, one broker, two daemons with their own door
ids, events and discovery; a person enrolled once, while both run, is granted at both doors."""

from __future__ import annotations

import json
import time
from pathlib import Path

from daemon_site import person, start_daemon
from mqtt_support import Listener

from facegate.config import FacegateConfig, parse_config
from facegate.daemon.topics import DoorTopics

DOORS = ("front_door", "back_door")


def door_config(door: str, url: str, data_dir: Path, broker, model_dir: Path) -> FacegateConfig:
    """One door of the site: the shared registry and broker, its own id and local data dir."""
    return parse_config(
        {
            "door": door,
            "storage": {"url": url, "data_dir": str(data_dir)},
            "model": {"path": str(model_dir)},
            "mqtt": {"host": broker.host, "port": broker.port},
            "source": {"kind": "none"},
            "lockout": {"enabled": False},
            "decision": {"grant_cooldown_s": 0},
            "enrollment": {"duplicate_similarity": 0.99999},
        }
    )


def enroll_at_desk(config: FacegateConfig, name: str, photos: list[Path]) -> None:
    """Enroll through the enrollment API against the site registry (as `facegate enroll`)."""
    from facegate.enrollment.enroll import enroll
    from facegate.enrollment.loading import load_tools
    from facegate.storage.registry import open_registry

    registry = open_registry(config.storage)
    try:
        pipeline, model = load_tools(registry, config)
        enroll(registry, pipeline, model, name, photos, config)
    finally:
        registry.close()


def decide(watcher: Listener, topics: DoorTopics, photo: bytes) -> dict:
    """Publish a photo on a door's image topic and return that door's access event."""
    watcher.publish(topics.image, photo)
    return json.loads(watcher.wait_for(topics.access, timeout=30)[1])


def test_two_doors_share_one_postgres_registry(
    pg_schema_url: str, mqtt_broker, exact_model_dir: Path, lfw_images: Path, tmp_path: Path
) -> None:
    desk = door_config("desk", pg_schema_url, tmp_path / "desk", mqtt_broker, exact_model_dir)
    enroll_at_desk(desk, "Ada", person(lfw_images, "Colin_Powell", 4))
    configs = [
        door_config(d, pg_schema_url, tmp_path / d, mqtt_broker, exact_model_dir) for d in DOORS
    ]
    topics = [DoorTopics("facegate", d) for d in DOORS]
    watcher = Listener(mqtt_broker, ["facegate/#", "homeassistant/#"])
    running = [start_daemon(c) for c in configs]
    try:
        for t in topics:
            watcher.wait_for(t.availability, b"online")
            watcher.wait_for(f"homeassistant/lock/facegate_{t.door}/door/config")
        ada = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
        newcomer = person(lfw_images, "Tony_Blair", 3)
        for t in topics:
            event = decide(watcher, t, ada)
            assert (event["event_type"], event["user"]) == ("granted", "Ada")
            # The daemon's own stage timings of the frame it judged.
            assert set(event["timings_ms"]) == {"face", "embed", "match"}
            assert event["timings_ms"]["face"] > 0 and event["timings_ms"]["embed"] > 0
            assert decide(watcher, t, newcomer[0].read_bytes())["event_type"] == "denied"
        # Each door answered only on its own topic.
        watcher.pending = [m for m in watcher.pending if not m[0].endswith("/last_access")]
        assert not [m for m in watcher.pending if m[0].endswith("/access")]

        # Enrolled once, at the desk, while both doors run: both pick it up on their own
        # registry poll (every few seconds) and grant.
        enroll_at_desk(desk, "Tony", newcomer)
        enrolled_at = time.monotonic()
        granted_after: dict[str, float] = {}
        deadline = enrolled_at + 30
        while len(granted_after) < len(topics) and time.monotonic() < deadline:
            for t in topics:
                if t.door in granted_after:
                    continue
                event = decide(watcher, t, newcomer[0].read_bytes())
                if event["event_type"] == "granted":
                    assert event["user"] == "Tony"
                    granted_after[t.door] = time.monotonic() - enrolled_at
            time.sleep(0.5)
        assert set(granted_after) == set(DOORS), granted_after
    finally:
        for daemon, thread in running:
            daemon.stop()
            thread.join(30)
        watcher.close()

    from facegate.storage.registry import open_registry

    registry = open_registry(desk.storage)
    try:
        rows = registry.access_log(limit=500)
    finally:
        registry.close()
    assert {row.door for row in rows} == set(DOORS)
    assert {(d, "granted") for d in DOORS} <= {(r.door, r.reason) for r in rows if r.user_id}
