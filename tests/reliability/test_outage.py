"""Broker stopped for a minute mid-stream, then restarted: no decision lost, order kept,
subscriptions restored, availability correct."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from daemon_site import folder_site_config, person, start_daemon
from mqtt_support import Listener
from reliability_support import wait_until

from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics("facegate", "front_door")
OUTAGE_S = 60.0


@pytest.mark.slow
def test_a_minute_without_broker_loses_nothing(
    tmp_path: Path, persistent_broker, exact_model_dir: Path, lfw_images: Path
) -> None:
    from facegate.enrollment.enroll import enroll
    from facegate.enrollment.loading import load_tools
    from facegate.storage.registry import open_registry

    # Reconnect attempts at most 2 s apart, so the test need not wait out a backoff.
    config = folder_site_config(
        tmp_path,
        persistent_broker,
        exact_model_dir,
        lfw_images,
        fps=1,
        mqtt={"reconnect_max_s": 2},
        decision={"grant_cooldown_s": 0},
        enrollment={"duplicate_similarity": 0.99999},
    )
    registry = open_registry(config.storage)
    pipeline, model = load_tools(registry, config)
    enroll(registry, pipeline, model, "Ada", person(lfw_images, "Colin_Powell", 4), config)
    watcher = Listener(
        persistent_broker, [TOPICS.access, TOPICS.availability], client_id="outage-minute"
    )
    watcher.client.reconnect_delay_set(min_delay=1, max_delay=2)
    daemon, thread = start_daemon(config)
    received: list[str] = []

    def take(n: int, timeout: float = 30) -> None:
        for _ in range(n):
            received.append(
                json.loads(watcher.wait_for(TOPICS.access, timeout=timeout)[1])["decision_id"]
            )

    try:
        watcher.wait_for(TOPICS.availability, b"online", timeout=20)
        take(2)
        logged_before = registry.access_log(limit=10_000)
        persistent_broker.stop()
        stopped = time.monotonic()
        time.sleep(OUTAGE_S)  # the camera keeps triggering decisions, queued in the outbox
        during = len(registry.access_log(limit=10_000)) - len(logged_before)
        queued = registry.outbox_depth()
        persistent_broker.start()
        outage_s = time.monotonic() - stopped
        watcher.pending.clear()
        watcher.wait_for(TOPICS.availability, b"online", timeout=30)
        # Subscriptions restored: an image trigger after the restart is decided.
        before = sum(daemon.stats.snapshot()["decisions"].values())
        watcher.publish(TOPICS.image, person(lfw_images, "Colin_Powell", 1)[0].read_bytes())
        wait_until(
            lambda: daemon.stats.snapshot()["counts"].get("triggers_image", 0) == 1,
            20,
            "the image trigger sent after the restart",
        )
        wait_until(
            lambda: sum(daemon.stats.snapshot()["decisions"].values()) > before, 20, "decision"
        )
        wait_until(lambda: registry.outbox_depth() == 0, 60, "the outbox to drain")
    finally:
        daemon.stop()
        thread.join(30)
    logged = [r.decision_id for r in reversed(registry.access_log(limit=10_000))]
    image_decisions = [r for r in registry.access_log(limit=10_000) if r.trigger == "image"]
    registry.close()
    unique = list(dict.fromkeys(received))
    while len(unique) < len(logged):
        take(1)
        unique = list(dict.fromkeys(received))
    watcher.wait_for(TOPICS.availability, b"offline")  # a clean stop says so
    watcher.close()
    print(
        f"\noutage {outage_s:.0f} s: {during} decisions made during it ({queued} outbox events "
        f"queued), {len(logged)} in all, all delivered in order"
    )
    assert outage_s >= OUTAGE_S
    assert during >= 20  # the door kept deciding throughout
    assert queued >= during  # every one of them waited in the outbox
    assert len(image_decisions) == 1
    # At-least-once: a repeat is possible, nothing missing, nothing out of order.
    assert unique == logged
