"""The door's worker: turns triggers into bursts, decisions, door openings and events.

One worker thread owns every decision, so decisions are serialised and the lockout and
cooldown state need no locks. Inputs arrive on a bounded queue (MQTT triggers, images, Home
Assistant unlocks) or from the motion gate on the live frames. Every decision is written to
the access log together with its outbox events in one transaction, then published by the
outbox loop. Anything that goes wrong while deciding denies: the door stays shut.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from facegate.config import FacegateConfig
from facegate.daemon.actuators import Actuator
from facegate.daemon.decision import LOCKOUT_REASONS, BurstDecision, DecisionReason
from facegate.daemon.discovery import LOCK_PAYLOAD, STATE_LOCKED, STATE_UNLOCKED, UNLOCK_PAYLOAD
from facegate.daemon.events import AccessEvent, Trigger
from facegate.daemon.lockout import LockoutRule, LockoutState, record_failure, release_expired
from facegate.daemon.motion import MotionDetector
from facegate.daemon.policy import GrantCooldown, check_user
from facegate.daemon.recorder import DecisionRecorder
from facegate.daemon.sources import Frame
from facegate.daemon.spool import DecisionSpool, spool_path
from facegate.daemon.stats import DaemonStats
from facegate.daemon.topics import DoorTopics
from facegate.daemon.triggers import BadPayloadError, parse_trigger
from facegate.daemon.verifier import BurstOutcome, StageTimes, Verifier
from facegate.errors import FacegateError, StorageError
from facegate.face.image_io import ImageDecodeError, decode_image
from facegate.face.types import Reason
from facegate.storage.records import OutboxMessage, User
from facegate.storage.registry import Registry, UnknownUserError

logger = logging.getLogger(__name__)

# Returns the newest frame not yet seen, waiting up to the given seconds (None if none).
FrameReader = Callable[[float], Frame | None]
Publish = Callable[[str, bytes, int, bool], bool]


@dataclass(frozen=True)
class Request:
    """One thing for the worker to decide: ``received`` is time.monotonic() at arrival."""

    trigger: Trigger
    received: float
    image: bytes | None = None
    unlock: bool = False
    # The frame in which motion was seen: the first frame of its burst.
    frame: Frame | None = None


class DoorController:
    """Owns the decision loop of one door; constructors start no threads."""

    def __init__(
        self,
        config: FacegateConfig,
        *,
        registry: Registry,
        verifier: Verifier,
        actuator: Actuator,
        publish: Publish,
        stats: DaemonStats,
        frames: FrameReader | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.topics = DoorTopics(config.mqtt.base_topic, config.door)
        self._registry = registry
        self._verifier = verifier
        self._actuator = actuator
        self._publish = publish
        self._stats = stats
        self._frames = frames
        self._on_queued = on_queued or (lambda: None)
        self._queue: queue.Queue[Request] = queue.Queue(maxsize=config.decision.trigger_queue)
        self._motion = MotionDetector(config.motion) if config.motion.enabled else None
        self._cooldown = GrantCooldown(config.decision.grant_cooldown_s)
        self._rule = LockoutRule(
            max_failures=config.lockout.max_failures,
            window_s=config.lockout.window_minutes * 60,
            duration_s=config.lockout.duration_minutes * 60,
        )
        self._tz = ZoneInfo(config.decision.timezone) if config.decision.timezone else None
        self._lockout = LockoutState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._restate_lock = threading.Event()
        self._recorder = DecisionRecorder(
            registry,
            self._deliver,
            stats,
            self._health,
            DecisionSpool(spool_path(config.storage.data_dir, config.door)),
        )
        self.last_progress = time.monotonic()

    # -- inputs (any thread) -------------------------------------------------------------

    def submit(self, request: Request) -> bool:
        """Queue a request; False (and counted) when the bounded queue is full."""
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self._stats.count("requests_dropped")
            logger.warning("request queue full: dropped a %s trigger", request.trigger.kind)
            return False
        return True

    def on_mqtt(self, topic: str, payload: bytes) -> None:
        """Route a message from a subscribed topic (called on paho's thread: only enqueue)."""
        now = time.monotonic()
        if topic == self.topics.trigger:
            try:
                trigger = parse_trigger(payload)
            except BadPayloadError as err:
                self._stats.bad_input("malformed_trigger")
                logger.warning("ignored a trigger: %s", err)
                return
            self._stats.count("triggers_mqtt")
            self.submit(Request(trigger, now))
        elif topic == self.topics.image:
            digest = hashlib.sha256(payload).hexdigest()[:16]
            self._stats.count("triggers_image")
            self.submit(Request(Trigger("image", source=topic, image=digest), now, image=payload))
        elif topic == self.topics.lock_command:
            command = payload.strip().upper()
            if command == UNLOCK_PAYLOAD.encode():
                self._stats.count("remote_unlocks")
                self.submit(Request(Trigger("home_assistant", source="lock"), now, unlock=True))
                return
            if command != LOCK_PAYLOAD.encode():
                self._stats.bad_input("bad_lock_command")
                logger.warning("ignored a lock command that is neither LOCK nor UNLOCK")
            # Re-state LOCKED from the worker: publishing waits for the broker's ack, which
            # arrives on this very (paho) thread, so doing it here would stall all MQTT traffic.
            self._restate_lock.set()
        else:
            self._stats.bad_input("unexpected_topic")

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Restore the persisted lockout and start the worker thread."""
        self._restore_lockout()
        self._thread = threading.Thread(target=self._run, name="door-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish (or abandon, at the burst deadline) the current burst and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._recorder.pending and not self._recorder.flush():
            logger.error(
                "stopping with %d decisions the registry did not take: they stay in the "
                "spool for the next start",
                self._recorder.pending,
            )

    @property
    def alive(self) -> bool:
        """True while the worker thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def queue_depth(self) -> int:
        """Requests waiting."""
        return self._queue.qsize()

    @property
    def locked_out(self) -> bool:
        """True while a lockout runs."""
        return self._lockout.is_locked(time.time())

    def publish_states(self) -> None:
        """Publish the retained lock and lockout states (after each connect)."""
        self._send(self.topics.lock_state, STATE_LOCKED.encode(), retain=True)
        self._send(self.topics.lockout, b"ON" if self.locked_out else b"OFF", retain=True)

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last_progress = time.monotonic()
            self._release_lockout_if_due()
            if self._restate_lock.is_set():
                self._restate_lock.clear()
                self._send(self.topics.lock_state, STATE_LOCKED.encode(), retain=True)
            try:
                request = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._recorder.retry_due():
                    self._recorder.flush()
                request = self._watch_motion()
            if request is None:
                continue
            try:
                self.handle(request)
            except Exception:  # the worker must survive anything; the door stays shut
                logger.exception("deciding a %s trigger failed", request.trigger.kind)
                self._stats.count("worker_errors")

    def _watch_motion(self) -> Request | None:
        if self._motion is None or self._frames is None:
            return None
        frame = self._frames(0.05)
        if frame is None:
            return None
        self._stats.count("frames")
        result = self._motion.update(frame.image, frame.timestamp)
        if not result.triggered:
            return None
        self._stats.count("triggers_motion")
        return Request(Trigger("motion"), time.monotonic(), frame=frame)

    def handle(self, request: Request) -> AccessEvent | None:
        """Decide one request end to end; returns the event recorded (None for bad input)."""
        if request.unlock:
            return self._remote_unlock(request)
        if self.locked_out:
            decision = BurstDecision(DecisionReason.LOCKED_OUT, None, None, 0.0, 0)
            return self._conclude(request, decision, None)
        try:
            outcome = self._decide_identity(request)
        except _BadImageError:
            return None
        except (FacegateError, ValueError, RuntimeError) as err:
            logger.error("verification failed, denying: %s", err)
            decision = BurstDecision(DecisionReason.ERROR, None, None, 0.0, 0)
            outcome = BurstOutcome(decision, None, ())
        if request.image is None:
            self._coalesce()
        return self._conclude(request, outcome.decision, outcome.last_frame, outcome.times)

    def _decide_identity(self, request: Request) -> BurstOutcome:
        cfg = self.config.decision
        if request.image is not None:
            frames, max_frames = self._image_frames(request), 1
        else:
            frames, max_frames = self._burst_frames(request.frame), cfg.burst_frames
        return self._verifier.judge_burst(frames, cfg.agreement, max_frames, cfg.liveness)

    def _image_frames(self, request: Request) -> Iterator[Frame]:
        try:
            rgb = decode_image(request.image or b"", max_side=self.config.face.max_image_side)
        except ImageDecodeError as err:
            # A decompression bomb (huge declared size) is refused before decoding: its own kind.
            too_large = err.reason is Reason.TOO_LARGE
            self._stats.bad_input("image_too_large" if too_large else "bad_image")
            logger.warning("ignored an image on %s: %s", request.trigger.source, err)
            raise _BadImageError from err
        yield Frame(image=rgb, timestamp=time.monotonic(), index=0, source="mqtt-image")

    def _burst_frames(self, first: Frame | None) -> Iterator[Frame]:
        cfg = self.config.decision
        deadline = time.monotonic() + cfg.burst_seconds
        taken = 0
        if first is not None:
            taken += 1
            yield first
        if self._frames is None:
            return
        while taken < cfg.burst_frames and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            frame = self._frames(min(remaining, 0.5))
            if frame is None:
                continue
            taken += 1
            yield frame

    def _coalesce(self) -> None:
        """Drop camera triggers that arrived during the burst: that burst answered them."""
        kept: list[Request] = []
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                break
            if request.image is None and not request.unlock:
                self._stats.count("triggers_coalesced")
            else:
                kept.append(request)
        for request in kept:
            self.submit(request)

    # -- after identity: policy, door, record ----------------------------------------------

    def _now_local(self) -> datetime:
        now = datetime.now(UTC)
        return now.astimezone(self._tz) if self._tz else now.astimezone()

    def _conclude(
        self,
        request: Request,
        decision: BurstDecision,
        frame: Frame | None,
        times: StageTimes | None = None,
    ) -> AccessEvent:
        reason = decision.reason
        user = self._verifier.user(decision.user.user_id) if decision.user else None
        if reason is DecisionReason.GRANTED:
            user = self._current(user) if user is not None else None
            if user is None:
                reason = DecisionReason.ERROR
            else:
                reason = check_user(user, self._now_local()) or reason
        if reason is DecisionReason.GRANTED and user is not None:
            if self._cooldown.should_open(user.id, time.monotonic()):
                reason = self._open_door(f"granted {user.id}")
            else:
                self._stats.count("grants_in_cooldown")
        if reason in LOCKOUT_REASONS and self.config.lockout.enabled:
            self._record_failure()
        event = AccessEvent(
            decision_id=uuid.uuid4().hex,
            timestamp=datetime.now(UTC),
            door=self.config.door,
            reason=reason,
            user=user.name if user is not None else None,
            candidate=decision.candidate.name if decision.candidate else None,
            score=decision.score,
            thresholds=self._verifier.thresholds,
            trigger=request.trigger,
            frames=decision.frames,
            latency_ms=(time.monotonic() - request.received) * 1e3,
            timings=times.as_dict() if times is not None and decision.frames else {},
        )
        self._record(event, user.id if user else None, frame)
        return event

    def _remote_unlock(self, request: Request) -> AccessEvent:
        reason = self._open_door("home assistant unlock")
        event = AccessEvent(
            decision_id=uuid.uuid4().hex,
            timestamp=datetime.now(UTC),
            door=self.config.door,
            reason=DecisionReason.REMOTE_UNLOCK if reason is DecisionReason.GRANTED else reason,
            user=None,
            candidate=None,
            score=0.0,
            thresholds=self._verifier.thresholds,
            trigger=request.trigger,
            frames=0,
            latency_ms=(time.monotonic() - request.received) * 1e3,
        )
        self._record(event, None, None)
        return event

    def _open_door(self, why: str) -> DecisionReason:
        """Actuate; any failure keeps the door shut and turns the grant into an error."""
        self._send(self.topics.lock_state, STATE_UNLOCKED.encode(), retain=True)
        result = self._actuator.open_door(why)
        if not result.ok:
            logger.error("the door did not open (%s): %s", why, result.detail)
            self._stats.count("actuator_failures")
            self._send(self.topics.lock_state, STATE_LOCKED.encode(), retain=True)
            return DecisionReason.ERROR
        timer = threading.Timer(
            self.config.actuator.pulse_s,
            lambda: self._send(self.topics.lock_state, STATE_LOCKED.encode(), retain=True),
        )
        timer.daemon = True
        timer.start()
        return DecisionReason.GRANTED

    def _record(self, event: AccessEvent, user_id: int | None, frame: Frame | None) -> None:
        payload = event.to_json()
        capture = self._save_capture(event, frame)
        messages = [
            OutboxMessage(self.topics.access, payload, 1, False),
            OutboxMessage(self.topics.last_access, payload, 1, True),
        ]
        self._stats.decision(str(event.reason), event.latency_ms)
        logger.info(
            "decision %s: %s (%s) user=%s score=%.3f frames=%d %.0f ms",
            event.decision_id[:8],
            event.event_type,
            event.reason,
            event.user,
            event.score,
            event.frames,
            event.latency_ms,
        )
        self._recorder.record(
            door=event.door,
            trigger=event.trigger.kind,
            decision=event.event_type,
            reason=str(event.reason),
            decision_id=event.decision_id,
            time=event.timestamp,
            user_id=user_id,
            candidate=event.candidate,
            score=event.score,
            latency_ms=event.latency_ms,
            frames=event.frames,
            capture_path=capture,
            events=messages,
        )
        self._on_queued()
        if frame is not None and self.config.capture.publish:
            self._send_capture(frame)

    def _current(self, user: User) -> User | None:
        """The user's record as stored now (a disable or expiry takes effect at once); None
        when it cannot be read: the policy cannot be checked, so the caller denies."""
        try:
            return self._registry.user_by_id(user.id)
        except UnknownUserError:
            logger.warning("user %d was deleted since the gallery was loaded: denying", user.id)
            return replace(user, active=False)
        except StorageError as err:
            logger.error("cannot check the access policy of user %d, denying: %s", user.id, err)
            self._stats.count("policy_unavailable")
            return None

    def _deliver(self, message: OutboxMessage) -> bool:
        try:
            return bool(self._publish(message.topic, message.payload, message.qos, message.retain))
        except Exception:  # publishing is best effort; the event stays queued for the outbox
            logger.exception("publishing to %s failed", message.topic)
            return False

    def _health(self, kind: str, message: str) -> None:
        self._stats.count(kind)
        payload = json.dumps({"event": kind, "message": message, "time": _utc_now()})
        self._send(self.topics.health, payload.encode())

    def _save_capture(self, event: AccessEvent, frame: Frame | None) -> str | None:
        if frame is None or not self.config.capture.enabled:
            return None
        from facegate.daemon.captures import save_capture

        try:
            return save_capture(
                self.config.storage.data_dir, event.decision_id, event.timestamp, frame.image
            )
        except OSError as err:
            logger.error("could not save the capture of %s: %s", event.decision_id[:8], err)
            self._stats.count("capture_errors")
            return None

    def _send_capture(self, frame: Frame) -> None:
        from facegate.daemon.captures import encode_jpeg

        self._send(self.topics.capture, encode_jpeg(frame.image), retain=False)

    def _send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        try:
            self._publish(topic, payload, 1, retain)
        except Exception:  # publishing state is best effort; never let it stop a decision
            logger.exception("publishing to %s failed", topic)

    # -- lockout ---------------------------------------------------------------------------

    def _restore_lockout(self) -> None:
        try:
            saved = self._registry.get_door_state(self.config.door)
        except StorageError as err:
            logger.error("cannot read the saved lockout state: %s", err)
            return
        self._lockout = LockoutState.from_dict(saved.data.get("lockout", {}))
        if self._lockout.is_locked(time.time()):
            logger.warning("lockout still running after restart until %s", saved.lockout_until)

    def _save_lockout(self) -> None:
        until = self._lockout.locked_until
        try:
            self._registry.set_door_state(
                self.config.door,
                datetime.fromtimestamp(until, UTC) if until else None,
                {"lockout": self._lockout.to_dict()},
            )
        except StorageError as err:
            logger.error("cannot save the lockout state: %s", err)

    def _record_failure(self) -> None:
        was_locked = self._lockout.is_locked(time.time())
        self._lockout = record_failure(self._lockout, time.time(), self._rule)
        if self._lockout.is_locked(time.time()) and not was_locked:
            logger.warning(
                "lockout: %d denied attempts; verification suspended for %.0f min",
                self._rule.max_failures,
                self._rule.duration_s / 60,
            )
            self._stats.count("lockouts")
            self._send(self.topics.lockout, b"ON", retain=True)
            self._send(self.topics.health, b'{"event": "lockout_engaged"}')
        self._save_lockout()

    def _release_lockout_if_due(self) -> None:
        self._lockout, released = release_expired(self._lockout, time.time())
        if released:
            logger.info("lockout over: verification resumes")
            self._send(self.topics.lockout, b"OFF", retain=True)
            self._save_lockout()


def _utc_now() -> str:
    return datetime.now(UTC).isoformat()


class _BadImageError(Exception):
    """An image trigger whose bytes are not an image: counted, no decision."""
