"""The quality gate: measure an aligned crop and name what makes a face unusable."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from facegate.config import FaceConfig
from facegate.face.types import Detection, Landmark, QualityReport, Reason

logger = logging.getLogger(__name__)

# Crops are measured at this size whatever the model's input size, so that the sharpness
# threshold in FaceConfig means the same for a 100 px and a 160 px model.
QUALITY_SIZE = 100
# Sharpness at which the sharpness part of the score reaches 1 - 1/e (about 0.63).
_SHARPNESS_SCALE = 100.0

# Landmark plausibility limits (geometry in units of the eye distance d, eyes levelled). LFW's
# 1st-99th percentiles: roll -9..7 deg, d / box width 0.30..0.45, nose 0.60 d and mouth 1.12 d
# below the eye line; the limits are far outside those so only broken detections trip them.
MAX_ROLL_DEG = 40.0
MIN_EYES_TO_BOX = 0.18
MAX_EYES_TO_BOX = 0.75
MIN_NOSE_DROP = 0.1
MAX_MOUTH_DROP = 3.0
# A landmark may lie this share of the box size outside the box (ears sit on its edge).
MAX_OUTSIDE_BOX = 0.35


def assess(crop: np.ndarray) -> QualityReport:
    """Measure an (S, S, 3) uint8 RGB aligned crop.

    ``sharpness``: variance of the Laplacian of the grey crop resized to QUALITY_SIZE (higher
    is sharper). ``brightness``: mean luma 0-255 of the central half (the eyes, nose and mouth,
    not the background). ``score`` in [0, 1]: (1 - exp(-sharpness / 100)) times a brightness
    term that is 1 for luma 70-180 and falls linearly to 0 at 0 and 255.
    """
    crop = np.asarray(crop)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    if grey.shape[:2] != (QUALITY_SIZE, QUALITY_SIZE):
        interpolation = cv2.INTER_AREA if grey.shape[0] > QUALITY_SIZE else cv2.INTER_LINEAR
        grey = cv2.resize(grey, (QUALITY_SIZE, QUALITY_SIZE), interpolation=interpolation)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    q = QUALITY_SIZE // 4
    brightness = float(grey[q : QUALITY_SIZE - q, q : QUALITY_SIZE - q].mean())
    sharp_term = 1.0 - float(np.exp(-sharpness / _SHARPNESS_SCALE))
    if brightness < 70.0:
        bright_term = brightness / 70.0
    elif brightness > 180.0:
        bright_term = (255.0 - brightness) / 75.0
    else:
        bright_term = 1.0
    score = float(np.clip(sharp_term * bright_term, 0.0, 1.0))
    return QualityReport(sharpness=sharpness, brightness=brightness, score=score)


def landmarks_plausible(detection: Detection) -> bool:
    """True when the landmarks look like an upright face: eyes roughly level (roll <= 40 deg),
    nose below the eyes and between them, mouth below the nose, eye distance consistent with
    the box width, and no landmark far outside the box."""
    points = np.asarray(detection.landmarks, dtype=np.float64)
    if points.shape[0] < 4 or not np.isfinite(points).all():
        return False
    right, left = points[Landmark.RIGHT_EYE], points[Landmark.LEFT_EYE]
    eye_vector = left - right  # the subject's right eye is on the image's left
    distance = float(np.hypot(*eye_vector))
    if distance <= 1e-6:
        return False
    roll = np.degrees(np.arctan2(eye_vector[1], eye_vector[0]))
    if abs(roll) > MAX_ROLL_DEG:
        return False
    width = detection.width
    height = detection.box[3] - detection.box[1]
    if width <= 0 or height <= 0:
        return False
    if not MIN_EYES_TO_BOX <= distance / width <= MAX_EYES_TO_BOX:
        return False
    # Face frame: origin at the eye midpoint, x along the eyes, y down, unit = eye distance.
    cos, sin = eye_vector / distance
    rotate = np.array([[cos, sin], [-sin, cos]])
    face = ((points - (right + left) / 2.0) @ rotate.T) / distance
    nose, mouth = face[Landmark.NOSE], face[Landmark.MOUTH]
    if not (-1.0 <= nose[0] <= 1.0 and nose[1] >= MIN_NOSE_DROP):
        return False
    if not (mouth[1] > nose[1] and mouth[1] <= MAX_MOUTH_DROP):
        return False
    margin = MAX_OUTSIDE_BOX * np.array([width, height])
    low = np.array(detection.box[:2]) - margin
    high = np.array(detection.box[2:]) + margin
    return bool(((points >= low) & (points <= high)).all())


def check(detection: Detection, report: QualityReport, config: FaceConfig) -> Reason | None:
    """The first reason the face is unusable, or None: landmarks, size, light, then blur.

    Light is checked before blur because a dark crop also has a low Laplacian variance.
    """
    if not landmarks_plausible(detection):
        return Reason.BAD_LANDMARKS
    if detection.eye_distance < config.min_eye_distance_px:
        return Reason.FACE_TOO_SMALL
    if report.brightness < config.min_brightness:
        return Reason.TOO_DARK
    if report.brightness > config.max_brightness:
        return Reason.TOO_BRIGHT
    if report.sharpness < config.min_sharpness:
        return Reason.TOO_BLURRED
    return None
