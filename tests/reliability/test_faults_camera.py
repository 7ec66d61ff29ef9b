"""Frame source faults at daemon level: a read that never returns, a video that ends.

The daemon runs with a real ResilientSource around a source of our own (the only way to make a
read hang on demand) or around the configured video file; images on the image topic must
still be decided while the camera misbehaves, and each fault is a health event and a count.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from daemon_site import person, with_sections
from mqtt_support import Listener
from reliability_support import drain, wait_until

from facegate.config import FacegateConfig
from facegate.daemon.app import FacegateDaemon
from facegate.daemon.sources import Frame, ResilientSource
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics("facegate", "front_door")


class HangingSource:
    """Delivers ``good`` frames, then blocks in ``read`` until ``release`` is set."""

    ended = False

    def __init__(self, image: np.ndarray, good: int, release: threading.Event) -> None:
        self.name = "hanging-camera"
        self._image, self._good, self._release = image, good, release
        self._index = 0

    def open(self) -> None:
        """Nothing to acquire."""

    def read(self) -> Frame | None:
        """A frame, or (after ``good`` of them) a call that does not return."""
        if self._index >= self._good:
            self._release.wait()
            return None
        self._index += 1
        time.sleep(0.02)
        return Frame(self._image, time.monotonic(), self._index - 1, self.name)

    def close(self) -> None:
        """Nothing to release."""


class WatchedDaemon(FacegateDaemon):
    """The real daemon, keeping a handle on its frame source (and optionally supplying it)."""

    def __init__(self, config: FacegateConfig, factory=None) -> None:
        super().__init__(config)
        self._factory = factory
        self.source: ResilientSource | None = None

    def _make_source(self, health):
        if self._factory is None:
            self.source = super()._make_source(health)
        else:
            self.source = ResilientSource(
                self._factory,
                read_timeout_s=self.config.source.read_timeout_s,
                reopen_min_s=self.config.source.reopen_min_s,
                reopen_max_s=self.config.source.reopen_max_s,
                on_health=health,
            )
        return self.source


def _start(daemon: FacegateDaemon) -> threading.Thread:
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    assert daemon.ready.wait(60), "the daemon did not become ready"
    return thread


def _health_kinds(watcher: Listener) -> list[str]:
    return [json.loads(payload)["event"] for payload in drain(watcher, TOPICS.health)]


def test_a_hung_read_is_abandoned_and_the_door_keeps_deciding(
    site: FacegateConfig, mqtt_broker, lfw_images: Path
) -> None:
    config = with_sections(
        site,
        source={"kind": "none", "read_timeout_s": 0.5, "reopen_min_s": 0.2, "reopen_max_s": 0.5},
        motion={"enabled": False},
    )
    face_path = person(lfw_images, "Colin_Powell", 1)[0]
    image = cv2.cvtColor(cv2.imread(str(face_path)), cv2.COLOR_BGR2RGB)
    release = threading.Event()
    made: list[HangingSource] = []

    def factory() -> HangingSource:
        made.append(HangingSource(image, good=5, release=release))
        return made[-1]

    watcher = Listener(mqtt_broker, [TOPICS.access, TOPICS.health, TOPICS.state])
    daemon = WatchedDaemon(config, factory)
    thread = _start(daemon)
    try:
        source = daemon.source
        assert source is not None
        wait_until(lambda: source.abandoned_reads >= 2, 15, "two hung reads abandoned")
        # Mid-fault (a read is hanging right now or about to): the image topic still decides.
        watcher.publish(TOPICS.image, face_path.read_bytes())
        event = json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])
        counts = daemon.stats.snapshot()["counts"]
        kinds = _health_kinds(watcher)
        state = json.loads(watcher.wait_for(TOPICS.state, timeout=5)[1])
    finally:
        daemon.stop()
        thread.join(30)
        release.set()  # let the abandoned reader threads finish
        watcher.close()
    assert not thread.is_alive(), "the daemon did not stop promptly with hung reads"
    assert (event["event_type"], event["user"]) == ("granted", "Ada")
    assert len(made) >= 3  # each hung source was replaced by a fresh one
    assert source.frames_read >= 10  # and the fresh ones delivered frames again
    assert "source_lost" in kinds and "source_restored" in kinds
    assert counts["source_lost"] >= 1
    assert "camera_ok" in state
    assert counts.get("worker_errors", 0) == 0


def _write_video(path: Path, images: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (250, 250))
    for rgb in images:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def test_a_video_that_ends_is_reported_and_replayed(
    site: FacegateConfig, mqtt_broker, lfw_images: Path, tmp_path: Path
) -> None:
    faces = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        for p in person(lfw_images, "Colin_Powell", 3)
    ]
    video = tmp_path / "door.avi"
    _write_video(video, faces * 2)
    config = with_sections(
        site,
        source={"kind": "url", "url": str(video), "fps": 20, "reopen_min_s": 0.3},
        motion={"enabled": False},
    )
    watcher = Listener(mqtt_broker, [TOPICS.access, TOPICS.health])
    daemon = WatchedDaemon(config)
    thread = _start(daemon)
    try:
        source = daemon.source
        assert source is not None
        wait_until(lambda: source.reopens >= 2, 20, "the ended video reopened twice")
        watcher.publish(TOPICS.image, person(lfw_images, "Colin_Powell", 1)[0].read_bytes())
        event = json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])
        kinds = _health_kinds(watcher)
        counts = daemon.stats.snapshot()["counts"]
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()
    assert event["event_type"] == "granted"
    assert source.frames_read >= 12  # the 6 frames, played at least twice
    assert kinds.count("source_lost") >= 2 and kinds.count("source_restored") >= 1
    assert counts["source_lost"] >= 2
    assert counts.get("worker_errors", 0) == 0
