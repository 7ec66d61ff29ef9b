"""One call from an image to an aligned, quality-checked face or a named reason."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np

from facegate.config import FaceConfig
from facegate.face import align, quality
from facegate.face.detect import FaceDetector, as_rgb
from facegate.face.image_io import ImageDecodeError, decode_image, load_image
from facegate.face.types import AlignedFace, AlignSpec, Detection, FaceResult, Reason

logger = logging.getLogger(__name__)

Selection = Literal["config", "largest", "center"]
# Landmark refinement costs one more detector run per face; a crowd gets it for its best few.
MAX_REFINED = 8


def box_area(detection: Detection) -> float:
    """Area of a detection's box in square pixels."""
    x0, y0, x1, y1 = detection.box
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def nearest_centre(detections: list[Detection], height: int, width: int) -> Detection:
    """The detection whose box centre is nearest the frame centre (LFW's convention)."""
    centre = np.array([width / 2.0, height / 2.0])

    def distance(det: Detection) -> float:
        x0, y0, x1, y1 = det.box
        return float(np.hypot((x0 + x1) / 2.0 - centre[0], (y0 + y1) / 2.0 - centre[1]))

    return min(detections, key=distance)


class FacePipeline:
    """Detect, select, align and quality-gate faces with one FaceConfig and one AlignSpec.

    Build it once (it loads the detector); calls are safe from any one thread at a time and
    the detector itself is locked, so sharing an instance between threads is safe too.
    """

    def __init__(self, config: FaceConfig, spec: AlignSpec, refine: bool = True) -> None:
        self.config = config
        self.spec = spec
        # refine: re-detect each face on an upright crop for better landmarks (~3 ms a face).
        self.refine = refine
        self.detector = FaceDetector(config.detector, config.min_detection_score)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """All faces in an (H, W, 3) uint8 RGB frame, highest score first.

        With ``refine`` (the default) the landmarks of the best MAX_REFINED faces come from a
        second pass on an upright crop (``FaceDetector.refine``), so every user of the
        pipeline (training, evaluation, the daemon) aligns on the same, better landmarks.
        """
        rgb = as_rgb(rgb)
        detections = self.detector.detect(rgb, tiled=self.config.tiled_detection)
        if not self.refine:
            return detections
        return [
            self.detector.refine(rgb, det) if rank < MAX_REFINED else det
            for rank, det in enumerate(detections)
        ]

    def select(
        self, detections: list[Detection], height: int, width: int, select: Selection = "config"
    ) -> Detection | Reason:
        """The face to use among several, or Reason.MULTIPLE_FACES under the "reject" policy."""
        if len(detections) == 1:
            return detections[0]
        if select == "center":
            return nearest_centre(detections, height, width)
        if select == "config" and self.config.multiple_faces == "reject":
            return Reason.MULTIPLE_FACES
        return max(detections, key=box_area)

    def align(self, rgb: np.ndarray, detection: Detection) -> AlignedFace:
        """Align and measure one detection (no gate): the crop is (S, S, 3) uint8 RGB."""
        crop = align.align_face(rgb, detection.landmarks, self.spec)
        return AlignedFace(crop=crop, detection=detection, quality=quality.assess(crop))

    def process(self, rgb: np.ndarray, select: Selection = "config") -> FaceResult:
        """An (H, W, 3) uint8 RGB frame to a usable aligned face or the reason there is none.

        ``select``: "config" follows FaceConfig.multiple_faces, "largest" keeps the biggest box,
        "center" the face nearest the frame centre.
        """
        rgb = as_rgb(rgb)
        # Refine only the chosen face: refinement keeps boxes, so the choice is the same as on
        # self.detect's output, and so are the landmarks. Keeping the largest face, tiles only
        # matter when the whole frame shows none (they find small faces): 2-3x less detection
        # time on a frame with a face. "reject" and "center" must see every face: always tile.
        largest = select == "largest" or (
            select == "config" and self.config.multiple_faces == "largest"
        )
        detections = self.detector.detect(
            rgb, tiled=self.config.tiled_detection, tiles_only_if_empty=largest
        )
        seen = len(detections)
        if not detections:
            return FaceResult(face=None, reason=Reason.NO_FACE, faces_seen=0)
        chosen = self.select(detections, rgb.shape[0], rgb.shape[1], select)
        if isinstance(chosen, Reason):
            return FaceResult(face=None, reason=chosen, faces_seen=seen)
        if self.refine:
            chosen = self.detector.refine(rgb, chosen)
        if not quality.landmarks_plausible(chosen):
            return FaceResult(face=None, reason=Reason.BAD_LANDMARKS, faces_seen=seen)
        try:
            face = self.align(rgb, chosen)
        except ValueError as err:  # degenerate landmarks that slipped through
            logger.warning("cannot align a detected face: %s", err)
            return FaceResult(face=None, reason=Reason.BAD_LANDMARKS, faces_seen=seen)
        reason = quality.check(chosen, face.quality, self.config)
        if reason is not None:
            logger.debug("face rejected: %s (%s)", reason.value, face.quality)
            return FaceResult(face=None, reason=reason, faces_seen=seen)
        return FaceResult(face=face, reason=None, faces_seen=seen)

    def process_bytes(self, data: bytes, select: Selection = "config") -> FaceResult:
        """Decode image bytes and process them; a bad image gives FaceResult(reason=...)."""
        try:
            rgb = decode_image(data, max_side=self.config.max_image_side)
        except ImageDecodeError as err:
            logger.warning("image refused: %s", err)
            return FaceResult(face=None, reason=err.reason)
        return self.process(rgb, select)

    def process_file(self, path: str | Path, select: Selection = "config") -> FaceResult:
        """Read, decode and process an image file; a bad file gives FaceResult(reason=...)."""
        try:
            rgb = load_image(path, max_side=self.config.max_image_side)
        except ImageDecodeError as err:
            logger.warning("image refused: %s", err)
            return FaceResult(face=None, reason=err.reason)
        return self.process(rgb, select)
