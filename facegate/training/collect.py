"""The seed's webcam collection: a live preview, ``a`` saves an anchor, ``p`` a positive.

Saved images are aligned face crops, 250 x 250 RGB JPEGs in LFW's geometry (the landmarks
placed where LFW's deep-funneled faces have them on average), under uuid file names in
``<out>/anchor`` and ``<out>/positive``. LFW geometry, rather than one model's crop, keeps
the crops usable by any model: training re-aligns them to the model's own crop, exactly as it
does LFW images, and ``negative/`` can be filled with LFW images as the seed did.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facegate.config import FaceConfig
from facegate.errors import CaptureError
from facegate.face.types import AlignSpec

logger = logging.getLogger(__name__)

CROP_SIZE = 250
WINDOW = "facegate collect (a: anchor, p: positive, q: quit)"
KEY_FOLDERS = {ord("a"): "anchor", ord("p"): "positive"}
QUIT_KEYS = frozenset({ord("q"), 27})  # q or Escape


def lfw_style_spec(size: int = CROP_SIZE) -> AlignSpec:
    """An AlignSpec putting eyes, nose and mouth where LFW's mean face has them."""
    from facegate.face.align import fallback_landmarks

    template = fallback_landmarks(1, 1)[:4]
    return AlignSpec(size=size, template=tuple((float(x), float(y)) for x, y in template))


def has_display() -> bool:
    """Whether a window can be shown: always on Windows/macOS, else X11 or Wayland is set."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_camera(index: int) -> Any:
    """An opened ``cv2.VideoCapture`` that has delivered a frame; CaptureError otherwise."""
    import cv2

    # OpenCV logs each failed backend on stderr; the CaptureError below says it in one line.
    cv_logging = cv2.utils.logging
    previous = cv_logging.getLogLevel()
    cv_logging.setLogLevel(cv_logging.LOG_LEVEL_SILENT)
    try:
        capture = cv2.VideoCapture(index)
    finally:
        cv_logging.setLogLevel(previous)
    if not capture.isOpened():
        capture.release()
        raise CaptureError(f"cannot open camera {index} (no such device, or it is busy)")
    ok, _ = capture.read()
    if not ok:
        capture.release()
        raise CaptureError(f"camera {index} opened but gives no frames")
    return capture


@dataclass
class CollectSession:
    """Where crops go and how many of each kind were saved."""

    out: Path
    counts: dict[str, int] = field(default_factory=lambda: {"anchor": 0, "positive": 0})

    def save(self, kind: str, crop_rgb: np.ndarray) -> Path:
        """Write an (S, S, 3) uint8 RGB crop as ``<out>/<kind>/<uuid>.jpg``; returns its path."""
        import cv2

        folder = self.out / kind
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid1()}.jpg"
        if not cv2.imwrite(str(path), cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2BGR)):
            raise CaptureError(f"{path}: cannot write image")
        self.counts[kind] += 1
        logger.info("saved %s %s", kind, path.name)
        return path

    def handle_key(self, key: int, crop_rgb: np.ndarray | None) -> bool:
        """Act on a key press: save an anchor/positive when a face is seen; False means quit."""
        key &= 0xFF
        if key in QUIT_KEYS:
            return False
        kind = KEY_FOLDERS.get(key)
        if kind is not None:
            if crop_rgb is None:
                logger.warning("no face in view: nothing saved")
            else:
                self.save(kind, crop_rgb)
        return True


def collect(out: Path, camera: int, face_config: FaceConfig) -> dict[str, int]:
    """Run the preview loop until ``q``; returns how many anchors and positives were saved."""
    if not has_display():
        raise CaptureError(
            "no display: collect shows a live preview (set DISPLAY or run it on a desktop)"
        )
    import cv2

    from facegate.face.align import align_face
    from facegate.face.pipeline import FacePipeline

    capture = open_camera(camera)
    spec = lfw_style_spec()
    pipeline = FacePipeline(face_config, spec)
    session = CollectSession(Path(out))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                raise CaptureError(f"camera {camera} stopped giving frames")
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            detections = pipeline.detect(rgb)
            crop = None
            if detections:
                chosen = pipeline.select(detections, rgb.shape[0], rgb.shape[1], "largest")
                x0, y0, x1, y1 = (int(v) for v in chosen.box)
                cv2.rectangle(frame, (x0, y0), (x1, y1), (0, 255, 0), 2)
                crop = align_face(rgb, chosen.landmarks, spec)
            text = f"anchor {session.counts['anchor']}  positive {session.counts['positive']}"
            cv2.putText(frame, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2)
            cv2.imshow(WINDOW, frame)
            if not session.handle_key(cv2.waitKey(1), crop):
                break
    finally:
        capture.release()
        cv2.destroyAllWindows()
    return dict(session.counts)
