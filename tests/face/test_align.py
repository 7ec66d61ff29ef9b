"""Similarity alignment: exact on synthetic points, upright crops from rotated real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facegate.face.align import (
    DEFAULT_TEMPLATE,
    align_face,
    default_spec,
    fallback_landmarks,
    similarity_transform,
)
from facegate.face.detect import FaceDetector
from facegate.face.types import AlignSpec


def rotation_scale(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """A (2, 3) similarity matrix."""
    angle = np.radians(angle_deg)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_transform_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (6, 2))
    truth = rotation_scale(33.0, 1.7, (12.0, -40.0))
    np.testing.assert_allclose(similarity_transform(src, apply(truth, src)), truth, atol=1e-9)


def test_similarity_transform_is_least_squares_and_never_mirrors() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (8, 2))
    truth = rotation_scale(-20.0, 0.5, (3.0, 4.0))
    noisy = apply(truth, src) + rng.normal(0, 0.5, src.shape)
    fitted = similarity_transform(src, noisy)
    assert np.abs(fitted[:, :2] - truth[:, :2]).max() < 0.02
    # Least squares: no similarity (the truth included) fits the noisy points better.
    residual = np.square(apply(fitted, src) - noisy).sum()
    assert residual <= np.square(apply(truth, src) - noisy).sum()
    nudged = fitted + np.array([[0.0, 0.0, 0.05], [0.0, 0.0, 0.0]])
    assert residual < np.square(apply(nudged, src) - noisy).sum()
    # A mirrored target has no similarity fit; the result is still a rotation, not a flip.
    mirrored = src * [-1.0, 1.0]
    assert np.linalg.det(similarity_transform(src, mirrored)[:, :2]) > 0


def test_degenerate_points_are_refused() -> None:
    with pytest.raises(ValueError):
        similarity_transform(np.ones((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        similarity_transform(np.array([[0.0, np.nan], [1.0, 1.0]]), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((3, 2)), np.zeros((4, 2)))


@pytest.mark.parametrize(
    ("scale", "angle", "size"),
    [(0.2, 25.0, 100), (0.9, -15.0, 100), (3.0, 40.0, 112), (0.4, 0.0, 64)],
)
def test_landmark_dots_land_on_the_template(scale: float, angle: float, size: int) -> None:
    # Draw four dots where a (rotated, scaled) face's landmarks would be; after alignment each
    # dot must sit on its template point. scale < 0.5 exercises the pre-shrink path.
    spec = AlignSpec(size=size, template=DEFAULT_TEMPLATE)
    template_px = np.array(DEFAULT_TEMPLATE) * size
    to_crop = rotation_scale(angle, scale, (0.0, 0.0))
    frame_size = int(size / scale * 1.6) + 40
    frame_centre = np.array([frame_size / 2, frame_size / 2])
    to_crop[:, 2] = np.array([size / 2, size / 2]) - to_crop[:, :2] @ frame_centre
    landmarks = apply(cv2.invertAffineTransform(to_crop), template_px)
    frame = np.zeros((frame_size, frame_size, 3), np.uint8)
    radius = max(2, round(2.5 / scale))
    for x, y in landmarks:
        cv2.circle(frame, (round(x * 16), round(y * 16)), radius * 16, (255, 255, 255), -1, 16, 4)
    crop = align_face(frame, landmarks, spec)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    grey = crop[:, :, 0].astype(np.float64)
    ys, xs = np.mgrid[0:size, 0:size]
    for point in template_px:
        near = (np.hypot(xs - point[0], ys - point[1]) < 5) * grey
        centroid = np.array([(xs * near).sum(), (ys * near).sum()]) / near.sum()
        assert np.linalg.norm(centroid - point) < 1.0


def test_fit_uses_only_the_template_points() -> None:
    # Garbage ear landmarks (rows 4, 5) must not move the crop.
    rgb = np.random.default_rng(2).integers(0, 255, (250, 250, 3), np.uint8)
    landmarks = fallback_landmarks(250, 250)
    wild = landmarks.copy()
    wild[4:] = [[0, 0], [249, 249]]
    spec = default_spec(100)
    np.testing.assert_array_equal(align_face(rgb, landmarks, spec), align_face(rgb, wild, spec))
    eyes_only = AlignSpec(size=100, template=DEFAULT_TEMPLATE[:2])
    assert align_face(rgb, landmarks[:2], eyes_only).shape == (100, 100, 3)


def test_real_face_eyes_land_near_the_template(detector: FaceDetector, faces) -> None:
    spec = default_spec(100)
    template_px = np.array(spec.template) * 100
    for face in faces:
        (found,) = detector.detect(face)
        matrix = similarity_transform(found.landmarks[:4], template_px)
        eyes = apply(matrix, found.landmarks[:2])
        # Four-point least squares: eyes within a few pixels of their template points.
        assert np.abs(eyes - template_px[:2]).max() < 3.5


@pytest.mark.parametrize("angle", [35.0, -30.0])
def test_rotated_face_comes_out_upright(detector: FaceDetector, faces, angle: float) -> None:
    template_eyes = np.array(DEFAULT_TEMPLATE[:2]) * 100
    for face in faces:
        rotation = cv2.getRotationMatrix2D((125, 125), angle, 1.0)
        tilted = cv2.warpAffine(face, rotation, (250, 250), borderMode=cv2.BORDER_REPLICATE)
        (found,) = detector.detect(tilted)
        crop = align_face(tilted, detector.refine(tilted, found).landmarks, default_spec(100))
        # Detect again on the aligned crop (padded, doubled) to see where the eyes really are.
        canvas = np.full((300, 300, 3), 128, np.uint8)
        canvas[50:250, 50:250] = cv2.resize(crop, (200, 200), interpolation=cv2.INTER_LINEAR)
        (again,) = detector.detect(canvas)
        eyes = (again.landmarks[:2] - 50.0) / 2.0
        assert abs(eyes[0, 1] - eyes[1, 1]) < 3.0  # level: under 5 degrees of roll
        assert np.abs(eyes - template_eyes).max() < 3.0


def test_face_at_the_frame_edge_is_padded_not_crashed(detector: FaceDetector, face) -> None:
    (found,) = detector.detect(face)
    shifted = found.landmarks - [120.0, 0.0]  # half the face is left of the frame
    crop = align_face(face, shifted, default_spec(100))
    assert crop.shape == (100, 100, 3)


def test_default_template_and_fallback() -> None:
    template = np.array(DEFAULT_TEMPLATE)
    assert template.shape == (4, 2) and (template > 0).all() and (template < 1).all()
    assert template[0, 1] == template[1, 1] and template[0, 0] < template[1, 0]
    assert template[2, 1] > template[0, 1] and template[3, 1] > template[2, 1]
    assert default_spec(112) == AlignSpec(size=112, template=DEFAULT_TEMPLATE)
    lfw = fallback_landmarks(250, 250)
    assert lfw.shape == (6, 2) and lfw.dtype == np.float32
    np.testing.assert_allclose(fallback_landmarks(500, 125), lfw * [0.5, 2.0], rtol=1e-6)
    # The fallback crop of an LFW-sized image is the usual centred face.
    assert 95 < lfw[0, 0] < lfw[1, 0] < 155 and 100 < lfw[0, 1] < 125
