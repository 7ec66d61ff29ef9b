"""The quality gate on real faces and their blurred, dark, bright and small versions."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facegate.config import FaceConfig
from facegate.face.align import align_face, default_spec
from facegate.face.detect import FaceDetector
from facegate.face.quality import assess, check, landmarks_plausible
from facegate.face.types import Detection, Reason

CONFIG = FaceConfig()


def blurred(rgb: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(rgb, (0, 0), 3.0)


def dark(rgb: np.ndarray) -> np.ndarray:
    return (rgb * 0.2).astype(np.uint8)


def bright(rgb: np.ndarray) -> np.ndarray:
    return (255 - (255 - rgb.astype(np.float32)) * 0.2).astype(np.uint8)


def gate(detector: FaceDetector, rgb: np.ndarray) -> tuple[Reason | None, float]:
    """Detect, align (100 px), assess and check one image."""
    (found,) = detector.detect(rgb)
    report = assess(align_face(rgb, found.landmarks, default_spec(100)))
    return check(found, report, CONFIG), report.score


def test_real_faces_pass(detector: FaceDetector, faces: list[np.ndarray]) -> None:
    for face in faces:
        reason, score = gate(detector, face)
        assert reason is None
        assert 0.3 < score <= 1.0


@pytest.mark.parametrize(
    ("degrade", "expected"),
    [(blurred, Reason.TOO_BLURRED), (dark, Reason.TOO_DARK), (bright, Reason.TOO_BRIGHT)],
)
def test_degraded_faces_fail_with_the_right_reason(
    detector: FaceDetector, faces: list[np.ndarray], degrade, expected: Reason
) -> None:
    for face in faces:
        reason, score = gate(detector, degrade(face))
        assert reason is expected
        assert score < gate(detector, face)[1]


def test_small_face_is_too_small(detector: FaceDetector, face: np.ndarray) -> None:
    small = cv2.resize(face, (100, 100), interpolation=cv2.INTER_AREA)  # eyes ~17 px apart
    (found,) = detector.detect(small)
    assert found.eye_distance < CONFIG.min_eye_distance_px
    report = assess(align_face(small, found.landmarks, default_spec(100)))
    assert check(found, report, CONFIG) is Reason.FACE_TOO_SMALL


def test_assess_measures_what_it_says() -> None:
    flat = np.full((100, 100, 3), 90, np.uint8)
    report = assess(flat)
    assert report.sharpness == 0.0 and report.brightness == 90.0 and report.score == 0.0
    noisy = np.random.default_rng(0).integers(0, 255, (160, 160, 3), np.uint8)
    sharp = assess(noisy)
    assert sharp.sharpness > 1000 and 0.9 < sharp.score <= 1.0
    # Brightness is the crop's centre: a bright frame around a dark centre reads dark.
    framed = np.full((100, 100, 3), 250, np.uint8)
    framed[25:75, 25:75] = 20
    assert assess(framed).brightness == 20.0


def _detection(points: list[tuple[float, float]], box=(50.0, 50.0, 150.0, 150.0)) -> Detection:
    landmarks = np.zeros((6, 2), np.float32)
    landmarks[:4] = points
    landmarks[4:] = [(55.0, 100.0), (145.0, 100.0)]
    return Detection(box=box, score=0.9, landmarks=landmarks)


GOOD = [(80.0, 90.0), (120.0, 90.0), (100.0, 114.0), (100.0, 135.0)]


@pytest.mark.parametrize(
    ("points", "box", "plausible"),
    [
        (GOOD, (50.0, 50.0, 150.0, 150.0), True),
        # eyes swapped: a mirrored or upside-down face
        ([GOOD[1], GOOD[0], GOOD[2], GOOD[3]], (50.0, 50.0, 150.0, 150.0), False),
        # 60 degrees of roll
        ([(80.0, 90.0), (100.0, 124.6), (70.0, 120.0), (60.0, 140.0)], (40, 50, 150, 150), False),
        # nose above the eyes
        ([GOOD[0], GOOD[1], (100.0, 70.0), GOOD[3]], (50.0, 50.0, 150.0, 150.0), False),
        # nose far outside the eyes
        ([GOOD[0], GOOD[1], (180.0, 110.0), GOOD[3]], (50.0, 50.0, 200.0, 150.0), False),
        # mouth above the nose
        ([GOOD[0], GOOD[1], GOOD[2], (100.0, 100.0)], (50.0, 50.0, 150.0, 150.0), False),
        # eye distance tiny for the box
        ([(98.0, 90.0), (102.0, 90.0), (100.0, 95.0), (100.0, 99.0)], (50, 50, 150, 150), False),
        # landmarks far outside the box
        (GOOD, (300.0, 300.0, 400.0, 400.0), False),
        # collapsed eyes
        ([(100.0, 90.0), (100.0, 90.0), GOOD[2], GOOD[3]], (50.0, 50.0, 150.0, 150.0), False),
    ],
)
def test_landmark_plausibility(points, box, plausible: bool) -> None:
    detection = _detection(points, box)
    assert landmarks_plausible(detection) is plausible
    report = assess(np.random.default_rng(0).integers(0, 255, (100, 100, 3), np.uint8))
    expected = None if plausible else Reason.BAD_LANDMARKS
    assert check(detection, report, FaceConfig(max_brightness=255.0)) is expected


def test_real_landmarks_are_plausible(detector: FaceDetector, faces: list[np.ndarray]) -> None:
    for face in faces:
        (found,) = detector.detect(face)
        assert landmarks_plausible(found)
        # The same face turned upside down or on its side (BlazeFace finds none of those
        # itself, but a broken detection could look like that).
        x0, y0, x1, y1 = found.box
        for turn in (1, 2, 3):
            angle = np.pi / 2 * turn
            rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
            turned = (found.landmarks - centre) @ rotate.T + centre
            side = max(x1 - x0, y1 - y0) / 2
            box = (centre[0] - side, centre[1] - side, centre[0] + side, centre[1] + side)
            assert not landmarks_plausible(Detection(box, found.score, turned.astype(np.float32)))


def test_thresholds_come_from_the_config(detector: FaceDetector, face: np.ndarray) -> None:
    (found,) = detector.detect(face)
    report = assess(align_face(face, found.landmarks, default_spec(100)))
    assert check(found, report, FaceConfig(min_sharpness=report.sharpness + 1)) is (
        Reason.TOO_BLURRED
    )
    assert check(found, report, FaceConfig(min_brightness=report.brightness + 1)) is (
        Reason.TOO_DARK
    )
    assert check(found, report, FaceConfig(min_eye_distance_px=found.eye_distance + 1)) is (
        Reason.FACE_TOO_SMALL
    )
