"""The 468-point face mesh on real LFW faces: eye corners, nose base, rotation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facegate.face.detect import (
    DLIB5_MESH_INDICES,
    MESH_LEFT_EYE_INNER,
    MESH_LEFT_EYE_OUTER,
    MESH_NOSE_BASE,
    MESH_NOSE_TIP,
    MESH_RIGHT_EYE_INNER,
    MESH_RIGHT_EYE_OUTER,
    FaceDetector,
    FaceMesh,
    dlib_five_points,
)
from facegate.face.types import Detection, Landmark


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    """One face-mesh model per module."""
    return FaceMesh()


def test_mesh_points_are_where_the_face_is(mesh: FaceMesh, detector: FaceDetector, faces) -> None:
    for face in faces:
        (found,) = detector.detect(face)
        points, presence = mesh.run(face, found)
        assert points.shape == (468, 3) and points.dtype == np.float32 and presence > 0.9
        corners = points[
            [MESH_RIGHT_EYE_OUTER, MESH_RIGHT_EYE_INNER, MESH_LEFT_EYE_INNER, MESH_LEFT_EYE_OUTER]
        ]
        # Image left to right: subject's right eye outer, inner; left eye inner, outer.
        assert np.all(np.diff(corners[:, 0]) > 5)
        # Each BlazeFace eye centre lies between its two corners.
        right_mid = corners[:2, :2].mean(axis=0)
        left_mid = corners[2:, :2].mean(axis=0)
        assert np.linalg.norm(right_mid - found.landmarks[Landmark.RIGHT_EYE]) < 6
        assert np.linalg.norm(left_mid - found.landmarks[Landmark.LEFT_EYE]) < 6
        tip, base = points[MESH_NOSE_TIP], points[MESH_NOSE_BASE]
        assert base[1] > tip[1] and abs(base[0] - found.landmarks[Landmark.NOSE][0]) < 8
        x0, y0, x1, _ = found.box
        inside = (points[:, 0] > x0 - 20) & (points[:, 0] < x1 + 20) & (points[:, 1] > y0 - 30)
        assert inside.all()


def test_rotated_face_gives_the_rotated_mesh(mesh: FaceMesh, detector: FaceDetector, face) -> None:
    (found,) = detector.detect(face)
    upright = mesh.refine_landmarks(face, found)
    rotation = cv2.getRotationMatrix2D((125, 125), 30.0, 1.0)
    tilted = cv2.warpAffine(face, rotation, (250, 250), borderMode=cv2.BORDER_REPLICATE)
    (tilted_found,) = detector.detect(tilted)
    points = mesh.refine_landmarks(tilted, tilted_found)
    expected = upright @ rotation[:, :2].T + rotation[:, 2]
    five = list(DLIB5_MESH_INDICES)
    assert np.abs(points[five] - expected[five]).max() < 4.0


def test_dlib_five_point_order(mesh: FaceMesh, detector: FaceDetector, face) -> None:
    (found,) = detector.detect(face)
    five = dlib_five_points(mesh.refine_landmarks(face, found))
    assert five.shape == (5, 2)
    # dlib: left eye outer, inner (image right), right eye outer, inner (image left), nose.
    assert five[0, 0] > five[1, 0] > five[3, 0] > five[2, 0]
    assert five[4, 1] > five[:4, 1].max() + 10


def test_no_face_has_low_presence(mesh: FaceMesh) -> None:
    flat = np.full((250, 250, 3), 127, np.uint8)
    landmarks = np.array(
        [[104, 113], [147, 113], [126, 139], [126, 161], [82, 125], [170, 123]], np.float32
    )
    _, presence = mesh.run(flat, Detection((70.0, 80.0, 180.0, 190.0), 0.9, landmarks))
    assert presence < 0.5
