"""``facegate live``: the seed's real-time verification, made useful for installing a door.

A window shows the camera feed with the detected face box and landmarks, the quality verdict,
and, for every burst (motion or ``v``), the decision the daemon would take. Nothing is
published, logged to the registry or actuated.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import cv2
import numpy as np

from facegate.config import FacegateConfig
from facegate.daemon.decision import DecisionReason
from facegate.daemon.motion import MotionDetector
from facegate.daemon.policy import check_user
from facegate.daemon.sources import Frame, ResilientSource, make_source
from facegate.daemon.verifier import Verifier
from facegate.errors import CaptureError
from facegate.face.types import FaceResult

logger = logging.getLogger(__name__)

WINDOW = "facegate live"
_GREEN = (0, 200, 0)
_RED = (0, 0, 230)
_AMBER = (0, 170, 255)


@dataclass(frozen=True)
class Banner:
    """The last decision shown on screen."""

    text: str
    granted: bool


def has_display() -> bool:
    """True when a window can be opened (X11 or Wayland)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def draw_overlay(bgr: np.ndarray, face: FaceResult, banner: Banner | None) -> np.ndarray:
    """Draw the face box, landmarks, quality verdict and last decision on a BGR frame copy."""
    out = bgr.copy()
    if face.face is not None or face.faces_seen:
        det = face.face.detection if face.face is not None else None
        if det is not None:
            x0, y0, x1, y1 = (round(float(v)) for v in det.box)
            cv2.rectangle(out, (x0, y0), (x1, y1), _GREEN, 2)
            for x, y in det.landmarks:
                cv2.circle(out, (round(float(x)), round(float(y))), 2, _AMBER, -1)
    verdict = "face ok" if face.face is not None else f"no usable face: {face.reason}"
    if face.face is not None:
        verdict += f" (quality {face.face.quality.score:.2f})"
    cv2.putText(out, verdict, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, _AMBER, 1, cv2.LINE_AA)
    if banner is not None:
        colour = _GREEN if banner.granted else _RED
        height = out.shape[0]
        cv2.putText(
            out,
            banner.text,
            (8, height - 12),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6,
            colour,
            2,
            cv2.LINE_AA,
        )
    cv2.putText(
        out, "v: verify  q: quit", (8, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (200, 200, 200), 1
    )
    return out


def describe(
    verifier: Verifier, outcome_reason: DecisionReason, user_id: int | None, score: float
) -> Banner:
    """The banner for a burst: who, the score, the reason after the access policy."""
    from datetime import datetime

    user = verifier.user(user_id) if user_id is not None else None
    reason = outcome_reason
    if reason is DecisionReason.GRANTED and user is not None:
        reason = check_user(user, datetime.now().astimezone()) or reason
    name = user.display_name if user is not None else "unknown"
    granted = reason is DecisionReason.GRANTED
    return Banner(f"{'GRANTED' if granted else 'DENIED'} {name} {score:.3f} ({reason})", granted)


def run_live(config: FacegateConfig, verifier: Verifier) -> int:
    """The window loop; returns when ``q`` is pressed or the window is closed."""
    if not has_display():
        raise CaptureError(
            "no display (DISPLAY/WAYLAND_DISPLAY unset): facegate live needs a screen"
        )
    source: ResilientSource = make_source(
        config.source, lambda kind, msg: logger.warning("%s: %s", kind, msg)
    )
    motion = MotionDetector(config.motion)
    banner: Banner | None = None
    source.start()
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        while True:
            frame = source.latest(1.0)
            key = cv2.waitKey(1) & 0xFF
            if key == ord("q"):
                return 0
            if frame is None:
                continue
            face = verifier.pipeline.process(frame.image)
            triggered = motion.update(frame.image, frame.timestamp).triggered or key == ord("v")
            if triggered:
                burst = _burst(
                    source, frame, config.decision.burst_frames, config.decision.burst_seconds
                )
                outcome = verifier.judge_burst(
                    burst,
                    config.decision.agreement,
                    config.decision.burst_frames,
                    config.decision.liveness,
                )
                decision = outcome.decision
                banner = describe(
                    verifier,
                    decision.reason,
                    decision.user.user_id if decision.user else None,
                    decision.score,
                )
            bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
            cv2.imshow(WINDOW, draw_overlay(bgr, face, banner))
            if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                return 0
    finally:
        source.stop()
        cv2.destroyAllWindows()


def _burst(source: ResilientSource, first: Frame, frames: int, seconds: float):
    yield first
    deadline = time.monotonic() + seconds
    taken = 1
    while taken < frames and time.monotonic() < deadline:
        frame = source.latest(min(0.5, max(0.0, deadline - time.monotonic())))
        if frame is not None:
            taken += 1
            yield frame
