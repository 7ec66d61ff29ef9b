"""The daemon's composition root: build everything in one readable order, stop in reverse.

config -> registry -> model and face pipeline -> gallery -> MQTT link and outbox -> frame
source -> door worker -> (systemd READY) -> main loop (watchdog, heartbeat) -> stop.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from facegate.config import FacegateConfig, mqtt_password
from facegate.daemon.actuators import make_actuator
from facegate.daemon.door import DoorController
from facegate.daemon.mqtt_link import MqttLink
from facegate.daemon.outbox import OutboxPublisher
from facegate.daemon.sources import ResilientSource, make_source
from facegate.daemon.stats import DaemonStats
from facegate.daemon.systemd import SystemdNotifier
from facegate.daemon.topics import DoorTopics
from facegate.daemon.verifier import Verifier
from facegate.enrollment.embedding import OnUnreadable, embed_missing
from facegate.errors import StorageError
from facegate.model.manifest import Thresholds
from facegate.scheduler.jobs import JobContext
from facegate.scheduler.schedule import build_scheduler, check_model_now
from facegate.storage.registry import Registry, open_registry

logger = logging.getLogger(__name__)

# How long start-up waits for the broker before declaring itself ready anyway: decisions are
# queued in the outbox meanwhile, so a broker outage must not keep the door from working.
BROKER_WAIT_S = 10.0
# How often the registry is asked (cheaply) whether users or galleries changed.
GALLERY_POLL_S = 5.0
# The worker must have looped within this many seconds for the watchdog to be fed.
WORKER_STALL_S = 30.0


def effective_thresholds(config: FacegateConfig, manifest_thresholds: Thresholds) -> Thresholds:
    """The manifest's calibrated thresholds with the config's overrides applied."""
    return Thresholds(
        detection=config.model.detection_threshold or manifest_thresholds.detection,
        verification=config.model.verification_threshold or manifest_thresholds.verification,
    )


def refresh_gallery(registry: Registry, verifier: Verifier) -> int:
    """Embed gallery images the active model has not embedded yet, then reload the index.

    Returns how many images were newly embedded. Never mixes embedding spaces: only this
    model's embeddings are loaded. An unreadable image is logged, counted and left out.
    """
    model = verifier.model
    done = embed_missing(registry, model, OnUnreadable.SKIP)
    verifier.load_gallery(registry.gallery_matrix(model.space))
    return len(done.vectors)


def follow_registry(registry: Registry, config: FacegateConfig, verifier: Verifier) -> None:
    """After a job: serve the registry's active model (switching model and gallery together
    when it changed, refusing files that fail their hash), then reload the gallery."""
    active = registry.active_model()
    if active is not None and active.sha256 != verifier.model.manifest.sha256:
        from facegate.face.pipeline import FacePipeline
        from facegate.scheduler.promote import load_version

        model = load_version(active, config.model.runtime, config.model.variant)
        # The promotion embedded the whole gallery; a file lost since must not keep the door
        # on a model the registry no longer names (refresh_gallery logs and counts it).
        embed_missing(registry, model, OnUnreadable.SKIP)
        verifier.swap_model(
            FacePipeline(config.face, model.manifest.align_spec),
            model,
            effective_thresholds(config, model.manifest.thresholds),
            registry.gallery_matrix(model.space),
        )
    refresh_gallery(registry, verifier)


def build_verifier(registry: Registry, config: FacegateConfig) -> Verifier:
    """Load the active model and a matching face pipeline, record the model in the registry,
    and load its galleries (embedding any image it has not embedded yet)."""
    from facegate.enrollment.enroll import register_model
    from facegate.enrollment.loading import load_tools

    pipeline, model = load_tools(registry, config)
    register_model(registry, model)
    verifier = Verifier(
        pipeline,
        model,
        effective_thresholds(config, model.manifest.thresholds),
        config.decision.margin,
    )
    refresh_gallery(registry, verifier)
    return verifier


class FacegateDaemon:
    """One door's long-running service. ``run()`` blocks until ``stop()`` or a signal."""

    def __init__(self, config: FacegateConfig) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.stats = DaemonStats()
        self.topics = DoorTopics(config.mqtt.base_topic, config.door)

    def stop(self) -> None:
        """Ask the daemon to stop (safe from any thread or a signal handler)."""
        self.stop_event.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def run(self) -> int:
        """Build, serve until stopped, tear down; returns the exit status."""
        config = self.config
        notifier = SystemdNotifier()
        self._install_signals()

        registry = open_registry(config.storage)
        verifier = build_verifier(registry, config)

        controller: DoorController | None = None
        registry_changed = threading.Event()

        def on_message(topic: str, payload: bytes) -> None:
            if topic == self.topics.registry_changed:
                # No data in it: the registry itself says what changed (main loop re-reads).
                self.stats.count("registry_notices")
                registry_changed.set()
            elif controller is not None:
                controller.on_mqtt(topic, payload)

        def on_connected() -> None:
            if controller is not None:
                controller.publish_states()
            outbox.wake()

        link = MqttLink(
            config.mqtt,
            self.topics,
            password=mqtt_password(config.mqtt),
            on_message=on_message,
            on_connected=on_connected,
            capture_enabled=config.capture.publish,
            on_bad_input=self.stats.bad_input,
        )
        outbox = OutboxPublisher(registry, link)
        health = self._health_publisher(link)
        source = self._make_source(health)
        controller = DoorController(
            config,
            registry=registry,
            verifier=verifier,
            actuator=make_actuator(config.actuator, link.publish),
            publish=link.publish,
            stats=self.stats,
            frames=source.latest if source is not None else None,
            on_queued=outbox.wake,
        )

        scheduler = build_scheduler(
            config,
            JobContext(
                registry=registry,
                config=config,
                model=lambda: verifier.model,
                reload=lambda: follow_registry(registry, config, verifier),
                health=health,
                stopping=self.stop_event,
            ),
        )

        link.start()
        outbox.start()
        if source is not None:
            source.start()
        controller.start()
        scheduler.start()
        connected = link.wait_connected(BROKER_WAIT_S)
        status = "serving" if connected else "serving; MQTT broker unreachable, queueing events"
        notifier.ready(status)
        self.ready.set()
        logger.info("facegate door %s is %s", config.door, status)

        next_heartbeat = time.monotonic()
        stamp = self._gallery_stamp(registry, verifier)
        next_stamp = time.monotonic() + GALLERY_POLL_S
        try:
            while not self.stop_event.wait(1.0):
                if (
                    controller.alive
                    and time.monotonic() - controller.last_progress < WORKER_STALL_S
                ):
                    notifier.watchdog()
                else:
                    logger.error("the door worker is stalled; not feeding the watchdog")
                if time.monotonic() >= next_heartbeat:
                    next_heartbeat = time.monotonic() + config.heartbeat.interval_s
                    self._heartbeat(link, registry, controller, source)
                if registry_changed.is_set():
                    registry_changed.clear()
                    check_model_now(scheduler)
                elif time.monotonic() < next_stamp:
                    continue
                next_stamp = time.monotonic() + GALLERY_POLL_S
                latest = self._gallery_stamp(registry, verifier)
                if latest is not None and latest != stamp:
                    # An enrollment or user change: pick it up without a restart.
                    stamp = latest
                    self._refresh(registry, verifier)
        finally:
            logger.info("stopping")
            notifier.stopping()
            scheduler.shutdown(wait=False)
            controller.stop()
            if source is not None:
                source.stop()
            outbox.drain()
            outbox.stop()
            link.stop()
            registry.close()
        return 0

    @staticmethod
    def _gallery_stamp(registry: Registry, verifier: Verifier) -> tuple | None:
        try:
            return registry.gallery_stamp(verifier.model.space)
        except StorageError as err:
            logger.warning("cannot check the registry for changes: %s", err)
            return None

    def _refresh(self, registry: Registry, verifier: Verifier) -> None:
        try:
            refresh_gallery(registry, verifier)
            self.stats.count("gallery_reloads")
        except (StorageError, ValueError) as err:
            logger.error("gallery reload failed; keeping the previous gallery: %s", err)

    def _health_publisher(self, link: MqttLink) -> Callable[[str, str], None]:
        """A callback publishing health events (camera lost, job failed) and counting them."""

        def publish(kind: str, message: str) -> None:
            self.stats.count(kind)
            payload = json.dumps({"event": kind, "message": message, "time": _now()})
            link.publish(self.topics.health, payload.encode(), qos=1, retain=False, timeout=1.0)

        return publish

    def _make_source(self, health: Callable[[str, str], None]) -> ResilientSource | None:
        if self.config.source.kind == "none":
            return None
        return make_source(self.config.source, health)

    def _heartbeat(self, link, registry, controller, source) -> None:
        try:
            depth = registry.outbox_depth()
        except Exception as err:  # the heartbeat must not stop the daemon
            logger.warning("heartbeat: outbox depth unavailable: %s", err)
            depth = None
        snapshot = self.stats.snapshot(
            time=_now(),
            outbox_depth=depth,
            queue_depth=controller.queue_depth,
            locked_out=controller.locked_out,
            camera_ok=source.healthy if source is not None else None,
            mqtt_dropped_oversize=link.dropped_oversize,
        )
        link.publish(self.topics.state, json.dumps(snapshot).encode(), qos=0, retain=True)


def _now() -> str:
    return datetime.now(UTC).isoformat()
