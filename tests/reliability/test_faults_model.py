"""A model file truncated or altered at run time is refused by its hash when the daemon follows
the registry to it; the previous model keeps serving and the enrolled user is still granted."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from daemon_site import person, start_daemon, with_sections
from mqtt_support import Listener
from reliability_support import model_variant, wait_until

from facegate.config import FacegateConfig
from facegate.daemon.topics import DoorTopics

TOPICS = DoorTopics("facegate", "front_door")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _alter(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one bit pattern flipped; same size
    path.write_bytes(bytes(data))


def test_tampered_models_are_refused_and_the_old_one_serves(
    site: FacegateConfig,
    mqtt_broker,
    exact_model_dir: Path,
    lfw_images: Path,
    tmp_path: Path,
    caplog,
) -> None:
    from facegate.model.bundle import load_model_dir
    from facegate.scheduler.promote import promote
    from facegate.storage.registry import open_registry

    config = with_sections(site, scheduler={"model_watch_s": 0.5}, decision={"grant_cooldown_s": 0})
    caplog.set_level(logging.INFO, logger="facegate.daemon.verifier")
    ada = person(lfw_images, "Colin_Powell", 1)[0].read_bytes()
    original = load_model_dir(exact_model_dir).manifest.sha256
    watcher = Listener(mqtt_broker, [TOPICS.access, TOPICS.health])
    daemon, thread = start_daemon(config)
    registry = open_registry(config.storage)
    refusals = []
    try:
        for i, tamper in enumerate((_truncate, _alter)):
            # Another process promotes a good model, then its file is damaged before the
            # daemon loads it.
            candidate = model_variant(exact_model_dir, tmp_path / f"v{i}", 0.25 * (i + 1))
            promote(registry, load_model_dir(candidate), why="test")
            tamper(candidate / "model.keras")
            while True:
                health = json.loads(watcher.wait_for(TOPICS.health, timeout=20)[1])
                if health["event"] == "model_refused" and str(candidate) in health["message"]:
                    refusals.append(health["message"])
                    break
            watcher.publish(TOPICS.image, ada)
            event = json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])
            assert (event["event_type"], event["user"]) == ("granted", "Ada"), tamper.__name__
        # A sound model is followed (the watch works): the refusals were not for nothing.
        good = model_variant(exact_model_dir, tmp_path / "good", 0.5)
        good_sha = promote(registry, load_model_dir(good), why="test").sha256
        wait_until(
            lambda: any(good_sha[:12] in r.getMessage() for r in caplog.records),
            15,
            "the daemon to serve the sound model",
        )
        watcher.publish(TOPICS.image, ada)
        last = json.loads(watcher.wait_for(TOPICS.access, timeout=20)[1])
        counts = daemon.stats.snapshot()["counts"]
    finally:
        daemon.stop()
        thread.join(30)
        watcher.close()
        registry.close()
    assert len(refusals) == 2
    assert all("sha256" in message or "truncated" in message for message in refusals)
    assert counts["model_refused"] >= 2
    assert counts.get("worker_errors", 0) == 0
    assert (last["event_type"], last["user"]) == ("granted", "Ada")
    # The tampered models were never served; the one the daemon started with was, throughout.
    served = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serving model")]
    assert served[0].startswith(f"serving model {original[:12]}")
    first_good = next(i for i, m in enumerate(served) if good_sha[:12] in m)
    assert all(original[:12] in m for m in served[:first_good])
    assert all(good_sha[:12] in m for m in served[first_good:])
