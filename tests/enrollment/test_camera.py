"""Camera enrollment: K good, varied captures from a frame stream, progress, and errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from enroll_fixtures import PEOPLE, person_images

from facegate.config import FacegateConfig
from facegate.enrollment.camera import camera_frames, capture_faces
from facegate.enrollment.enroll import enroll_faces
from facegate.errors import CaptureError, EnrollmentError
from facegate.storage.registry import Registry


def _frames(lfw_images: Path) -> list[np.ndarray]:
    faces = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        for p in person_images(lfw_images, PEOPLE[2], 3)
    ]
    empty = np.full((240, 320, 3), 90, np.uint8)
    # The person holds still (repeated frames), steps away (empty), then turns.
    return [empty, faces[0], faces[0], faces[0], empty, faces[1], faces[1], faces[2]]


def test_capture_takes_varied_frames_and_reports_progress(
    registry: Registry, pipeline, tiny_model, config: FacegateConfig, lfw_images: Path
) -> None:
    messages: list[str] = []
    frames = _frames(lfw_images)
    captured = capture_faces(
        iter(frames),
        pipeline,
        tiny_model,
        3,
        config.enrollment.duplicate_similarity,
        progress=messages.append,
        source="camera0",
    )
    assert [c.source for c in captured] == ["camera0#1", "camera0#2", "camera0#3"]
    np.testing.assert_array_equal(captured[0].crop, pipeline.process(frames[1]).face.crop)
    np.testing.assert_array_equal(captured[1].crop, pipeline.process(frames[5]).face.crop)
    assert any("no_face" in m for m in messages)
    assert any("captured 1/3" in m and "turn" in m for m in messages)
    assert "captured 3/3" in messages[-1]

    report = enroll_faces(registry, tiny_model, "Serena", captured, config)
    assert report.stored and len(registry.gallery("Serena")) == 3
    assert {g.source for g in registry.gallery("Serena")} == {"camera0#1", "camera0#2", "camera0#3"}


def test_capture_fails_clearly_when_frames_run_out(
    pipeline, tiny_model, config: FacegateConfig, lfw_images: Path
) -> None:
    with pytest.raises(EnrollmentError, match="captured only 3 of 5"):
        capture_faces(
            iter(_frames(lfw_images)),
            pipeline,
            tiny_model,
            5,
            config.enrollment.duplicate_similarity,
        )


def test_a_missing_camera_is_a_clear_error() -> None:
    with pytest.raises(CaptureError, match="camera 97 cannot be opened"):
        next(camera_frames(97))
