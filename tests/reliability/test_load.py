"""Load held: a trigger storm and an image flood leave the daemon bounded and responsive."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

from daemon_site import person, start_daemon, with_sections
from mqtt_support import Listener

from facegate.config import FacegateConfig
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics("facegate", "front_door")
TRIGGERS = 1000  # within 10 s
IMAGES = 100  # published as fast as the broker takes them


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_trigger_storm_and_image_flood(site: FacegateConfig, mqtt_broker, lfw_images: Path):
    config = with_sections(site, lockout={"enabled": False}, heartbeat={"interval_s": 1})
    watcher = Listener(mqtt_broker, [TOPICS.access, TOPICS.state])
    daemon, thread = start_daemon(config)
    face = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
    try:
        watcher.publish(TOPICS.image, face)
        watcher.wait_for(TOPICS.access, timeout=30)  # warm: first decision done
        rss_before = _rss_mb()
        start = time.monotonic()
        for i in range(TRIGGERS):
            watcher.client.publish(TOPICS.trigger, json.dumps({"source": f"storm{i}"}), qos=0)
            if i % 100 == 99:
                time.sleep(max(0.0, start + (i + 1) / 100 - time.monotonic()))
        storm_s = time.monotonic() - start
        flood = [watcher.client.publish(TOPICS.image, face, qos=1) for _ in range(IMAGES)]
        for info in flood:
            info.wait_for_publish(30)
        # Still responsive: a fresh image trigger gets its own decision promptly.
        deadline = time.monotonic() + 120
        while daemon.stats.snapshot()["counts"].get("triggers_image", 0) < IMAGES + 1:
            assert time.monotonic() < deadline, "image triggers were not all received"
            time.sleep(0.2)
        while True:
            snap = daemon.stats.snapshot()
            decided = sum(snap["decisions"].values())
            handled = decided + snap["counts"].get("requests_dropped", 0)
            handled += snap["counts"].get("triggers_coalesced", 0)
            if handled >= TRIGGERS + IMAGES + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - start
        rss_after = _rss_mb()
        # Still responsive once the storm has passed: a new snapshot is decided promptly.
        before = sum(daemon.stats.snapshot()["decisions"].values())
        watcher.publish(TOPICS.image, face)
        probe_deadline = time.monotonic() + 15
        while sum(daemon.stats.snapshot()["decisions"].values()) == before:
            assert time.monotonic() < probe_deadline, "no decision after the storm"
            time.sleep(0.05)
        probe_s = time.monotonic() + 15 - probe_deadline
    finally:
        daemon.stop()
        thread.join(60)
        watcher.close()
    counts = snap["counts"]
    dropped, coalesced = counts.get("requests_dropped", 0), counts.get("triggers_coalesced", 0)
    print(
        f"\nstorm: {TRIGGERS} triggers in {storm_s:.1f} s + {IMAGES} images; {decided} decisions "
        f"in {elapsed:.1f} s ({decided / elapsed:.1f}/s); dropped {dropped}, coalesced "
        f"{coalesced}; RSS {rss_before:.0f} -> {rss_after:.0f} MB; next decision {probe_s:.2f} s"
    )
    assert storm_s < 15
    assert counts["triggers_mqtt"] == TRIGGERS
    # Every trigger was decided, dropped by the bounded queue, or coalesced into a burst.
    assert handled >= TRIGGERS + IMAGES + 1
    assert counts.get("requests_dropped", 0) > 0  # the queue is bounded, so a storm overflows it
    assert decided >= 10  # decisions kept flowing during the storm
    assert daemon.stats.snapshot()["counts"].get("worker_errors", 0) == 0
    assert rss_after - rss_before < 200
