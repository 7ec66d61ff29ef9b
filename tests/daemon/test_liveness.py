"""The photo-replay baseline: identical or motionless faces across a burst."""

import numpy as np

from facegate.daemon.liveness import looks_live
from facegate.face.types import AlignedFace, Detection, QualityReport

BASE = np.array([[40, 50], [70, 50], [55, 65], [55, 80], [30, 55], [80, 55]], np.float32)


def face(crop_value: int, shift: float = 0.0) -> AlignedFace:
    crop = np.full((8, 8, 3), crop_value, np.uint8)
    det = Detection(box=(20, 30, 90, 100), score=0.9, landmarks=BASE + shift)
    return AlignedFace(crop=crop, detection=det, quality=QualityReport(50.0, 120.0, 0.5))


def test_single_frame_cannot_be_judged() -> None:
    assert looks_live([])
    assert looks_live([face(1)])


def test_identical_frames_are_a_replay() -> None:
    assert not looks_live([face(1), face(1), face(1)])


def test_changed_pixels_but_frozen_landmarks_are_a_replay() -> None:
    assert not looks_live([face(1), face(2, shift=0.1)])


def test_a_moving_face_is_live() -> None:
    assert looks_live([face(1), face(2, shift=1.5)])
    assert looks_live([face(1), face(1), face(3, shift=-2.0)])
