"""Camera enrollment: capture K good, varied face crops from a live camera.

A frame counts when the face pipeline accepts it and its embedding differs enough from the
previous accepted one (cosine similarity below ``duplicate_similarity``): the person is asked
to turn slightly between captures so the gallery covers small pose changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

import numpy as np

from facegate.enrollment.enroll import Candidate, face_candidate
from facegate.errors import CaptureError, EnrollmentError
from facegate.face.types import FaceResult

if TYPE_CHECKING:
    from facegate.model.bundle import LoadedModel

logger = logging.getLogger(__name__)


class FrameProcessor(Protocol):
    """What camera enrollment needs of the face pipeline."""

    def process(self, rgb: np.ndarray) -> FaceResult:
        """An (H, W, 3) uint8 RGB frame to an aligned face or the reason there is none."""
        ...


def camera_frames(index: int, warmup: int = 5) -> Iterator[np.ndarray]:
    """Frames of camera ``index`` as (H, W, 3) uint8 RGB; CaptureError when it cannot open."""
    import cv2

    capture = cv2.VideoCapture(index)
    try:
        if not capture.isOpened():
            raise CaptureError(f"camera {index} cannot be opened (is one connected?)")
        failures = 0
        skipped = 0
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                failures += 1
                if failures >= 30:
                    raise CaptureError(f"camera {index} stopped delivering frames")
                time.sleep(0.05)
                continue
            failures = 0
            if skipped < warmup:  # the first frames are often dark while exposure settles
                skipped += 1
                continue
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def capture_faces(
    frames: Iterable[np.ndarray],
    pipeline: FrameProcessor,
    model: LoadedModel,
    count: int,
    duplicate_similarity: float,
    progress: Callable[[str], None] = lambda _msg: None,
    timeout_s: float = 120.0,
    source: str = "camera",
) -> list[Candidate]:
    """Take ``count`` accepted, mutually varied crops from ``frames``; progress messages go to
    ``progress``. EnrollmentError when the frames end or ``timeout_s`` passes first."""
    if count < 1:
        raise EnrollmentError("the capture count must be at least 1")
    accepted: list[Candidate] = []
    previous: np.ndarray | None = None
    last_reason = ""
    deadline = time.monotonic() + timeout_s
    progress(f"look at the camera: capturing {count} images")
    for frame in frames:
        if time.monotonic() > deadline:
            break
        result = pipeline.process(frame)
        if result.face is None:
            reason = result.reason.value if result.reason is not None else "no usable face"
            if reason != last_reason:
                progress(f"  waiting for a good face ({reason})")
                last_reason = reason
            continue
        last_reason = ""
        vector = np.asarray(model.embed(result.face.crop[None]), np.float32)[0]
        direction = vector / max(float(np.linalg.norm(vector)), 1e-12)
        if previous is not None and float(previous @ direction) >= duplicate_similarity:
            continue  # too like the last capture: wait for the person to move
        previous = direction
        accepted.append(face_candidate(f"{source}#{len(accepted) + 1}", frame, result.face))
        done = len(accepted)
        hint = "; turn your head slightly" if done < count else ""
        progress(f"  captured {done}/{count} (quality {result.face.quality.score:.2f}){hint}")
        if done >= count:
            return accepted
    raise EnrollmentError(
        f"captured only {len(accepted)} of {count} good images before the camera stopped "
        f"or {timeout_s:.0f} s passed"
    )
