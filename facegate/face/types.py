"""Plain data passed between the face-pipeline stages: numpy arrays and frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class Reason(StrEnum):
    """Why an image gave no usable face; the values are stable (logs, access log, MQTT)."""

    UNREADABLE = "unreadable_image"
    TOO_LARGE = "image_too_large"
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    FACE_TOO_SMALL = "face_too_small"
    TOO_BLURRED = "too_blurred"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    BAD_LANDMARKS = "implausible_landmarks"


class Landmark:
    """Row indices into ``Detection.landmarks`` (the subject's own left and right)."""

    RIGHT_EYE = 0
    LEFT_EYE = 1
    NOSE = 2
    MOUTH = 3
    RIGHT_EAR = 4
    LEFT_EAR = 5


@dataclass(frozen=True)
class Detection:
    """One face found in a frame.

    ``box`` is (x0, y0, x1, y1) in pixels of the frame; ``score`` the detector's confidence
    in [0, 1]; ``landmarks`` a (6, 2) float32 array of (x, y) pixels ordered as ``Landmark``.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def eye_distance(self) -> float:
        """Distance between the eye centres in pixels."""
        eyes = self.landmarks[[Landmark.RIGHT_EYE, Landmark.LEFT_EYE]]
        return float(np.linalg.norm(eyes[0] - eyes[1]))


@dataclass(frozen=True)
class AlignSpec:
    """How a model wants its faces cropped; read from the model manifest.

    ``template`` maps each landmark in ``Landmark`` order (right eye, left eye, nose, mouth)
    to (x, y) in [0, 1] crop coordinates; the similarity transform is fitted on these points.
    """

    size: int
    template: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class QualityReport:
    """Measured quality of an aligned crop: Laplacian variance, mean luma 0-255, overall 0-1."""

    sharpness: float
    brightness: float
    score: float


@dataclass(frozen=True)
class AlignedFace:
    """A face ready for the model: ``crop`` is (S, S, 3) uint8 RGB, S = AlignSpec.size."""

    crop: np.ndarray
    detection: Detection
    quality: QualityReport


@dataclass(frozen=True)
class FaceResult:
    """The outcome for one image: exactly one of ``face`` and ``reason`` is set."""

    face: AlignedFace | None
    reason: Reason | None = None
    faces_seen: int = 0

    @property
    def ok(self) -> bool:
        """True when a usable face was found."""
        return self.face is not None
