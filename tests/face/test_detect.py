"""BlazeFace detection on real LFW faces, in frames of any size."""

from __future__ import annotations

import numpy as np
import pytest
from face_frames import background, paste

from facegate.face.detect import FaceDetector, as_rgb, ssd_anchors, weighted_nms
from facegate.face.types import Detection, Landmark

# Mean landmark positions of LFW deep-funneled faces (250x250), measured with this detector.
LFW_RIGHT_EYE = np.array([104.0, 113.5])
LFW_LEFT_EYE = np.array([146.7, 113.0])


def test_anchor_counts_match_the_models() -> None:
    short = ssd_anchors(128, (8, 16, 16, 16), 2)
    full = ssd_anchors(192, (4,), 1)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # First anchors sit at the centre of the top-left cell, two per cell in the 16x16 layer.
    np.testing.assert_allclose(short[:2], [[1 / 32, 1 / 32]] * 2)
    np.testing.assert_allclose(short[512], [1 / 16, 1 / 16])
    np.testing.assert_allclose(full[1], [3 / 96, 1 / 96])


def test_weighted_nms_merges_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=np.float64)
    points = np.zeros((3, 6, 2))
    points[1] += 1.0
    scores = np.array([0.9, 0.3, 0.8])
    kept = weighted_nms(boxes, points, scores)
    assert [score for _, _, score in kept] == [0.9, 0.8]
    np.testing.assert_allclose(kept[0][0], [0.25, 0, 10.25, 10])  # (0*0.9 + 1*0.3) / 1.2
    np.testing.assert_allclose(kept[0][1], np.full((6, 2), 0.25))
    np.testing.assert_allclose(kept[1][0], boxes[2])


@pytest.mark.parametrize("index", range(5))
def test_one_face_per_lfw_image_with_eyes_in_place(
    detector: FaceDetector, faces: list[np.ndarray], index: int
) -> None:
    (found,) = detector.detect(faces[index])
    assert found.score >= 0.75
    assert found.landmarks.shape == (6, 2) and found.landmarks.dtype == np.float32
    right, left = found.landmarks[Landmark.RIGHT_EYE], found.landmarks[Landmark.LEFT_EYE]
    # The subject's right eye is on the image's left.
    assert right[0] < left[0]
    assert np.linalg.norm(right - LFW_RIGHT_EYE) < 10
    assert np.linalg.norm(left - LFW_LEFT_EYE) < 10
    nose, mouth = found.landmarks[Landmark.NOSE], found.landmarks[Landmark.MOUTH]
    assert right[0] < nose[0] < left[0] and nose[1] > right[1] and mouth[1] > nose[1]
    # Ears outside the eyes, on their own side.
    assert found.landmarks[Landmark.RIGHT_EAR][0] < right[0]
    assert found.landmarks[Landmark.LEFT_EAR][0] > left[0]
    x0, y0, x1, y1 = found.box
    assert x0 < right[0] < left[0] < x1 and y0 < right[1] < mouth[1] < y1


def test_mirrored_face_swaps_nothing_but_positions(detector: FaceDetector, face) -> None:
    (found,) = detector.detect(face)
    (mirrored,) = detector.detect(face[:, ::-1])  # a view with a negative stride
    # Mirroring moves the subject's right eye to where the left one was (mirrored).
    expected_right = np.array([249.0 - found.landmarks[1][0], found.landmarks[1][1]])
    assert np.linalg.norm(mirrored.landmarks[0] - expected_right) < 4


@pytest.mark.parametrize(
    ("height", "width", "x", "y", "size"),
    [(480, 640, 350, 180, 250), (480, 640, 20, 40, 200), (1080, 1920, 1200, 500, 450)],
)
def test_face_pasted_in_a_bigger_frame_is_found_in_place(
    detector: FaceDetector, face: np.ndarray, height: int, width: int, x: int, y: int, size: int
) -> None:
    (reference,) = detector.detect(face)
    frame = paste(background(height, width), face, x, y, size)
    found = detector.detect(frame)
    assert len(found) == 1
    scale = size / 250.0
    expected = reference.landmarks[:4] * scale + (x, y)
    # Within about a twentieth of the face width of where they are in the original.
    assert np.abs(found[0].landmarks[:4] - expected).max() < 12 * scale + 2
    expected_box = np.array(reference.box) * scale + (x, y, x, y)
    assert np.abs(np.array(found[0].box) - expected_box).max() < 25 * scale


def test_two_faces_are_both_found(detector: FaceDetector, faces: list[np.ndarray]) -> None:
    frame = paste(background(480, 640, seed=3), faces[1], 20, 100, 250)
    frame = paste(frame, faces[2], 400, 200, 200)
    found = detector.detect(frame)
    assert len(found) == 2
    assert found[0].score >= found[1].score
    centres = sorted((d.box[0] + d.box[2]) / 2 for d in found)
    assert centres[0] < 200 < 400 < centres[1]


def test_no_face_in_a_synthetic_frame(detector: FaceDetector) -> None:
    assert detector.detect(background(480, 640, seed=5)) == []
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(background(1080, 1920, seed=6), tiled=True) == []


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 5000, 3), (3000, 2, 3), (0, 0, 3)])
def test_degenerate_frames_do_not_crash(detector: FaceDetector, shape: tuple) -> None:
    result = detector.detect(np.full(shape, 128, np.uint8))
    assert all(isinstance(d, Detection) for d in result)


def test_grey_and_rgba_frames_are_accepted(detector: FaceDetector, face: np.ndarray) -> None:
    grey = face.mean(axis=2).astype(np.uint8)
    assert len(detector.detect(grey)) == 1
    rgba = np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])
    assert len(detector.detect(rgba)) == 1
    with pytest.raises(ValueError, match="uint8"):
        as_rgb(face.astype(np.float32))


def test_short_range_model_also_finds_close_faces(face: np.ndarray) -> None:
    short = FaceDetector("short_range", min_score=0.5)
    (found,) = short.detect(face)
    assert np.linalg.norm(found.landmarks[0] - LFW_RIGHT_EYE) < 10


def test_min_score_filters(face: np.ndarray) -> None:
    strict = FaceDetector("full_range", min_score=0.999)
    assert strict.detect(face) == []
    with pytest.raises(ValueError, match="unknown"):
        FaceDetector("long_range")  # type: ignore[arg-type]


@pytest.mark.parametrize("angle", [-35.0, 30.0])
def test_refine_fixes_landmarks_of_a_rolled_face(
    detector: FaceDetector, faces: list[np.ndarray], angle: float
) -> None:
    import cv2

    raw_errors, refined_errors = [], []
    for face in faces:
        (upright,) = detector.detect(face)
        rotation = cv2.getRotationMatrix2D((125, 125), angle, 1.0)
        tilted = cv2.warpAffine(face, rotation, (250, 250), borderMode=cv2.BORDER_REPLICATE)
        expected = upright.landmarks[:4] @ rotation[:, :2].T + rotation[:, 2]
        (found,) = detector.detect(tilted)
        refined = detector.refine(tilted, found)
        assert refined.box == found.box and refined.score == found.score
        raw_errors.append(np.abs(found.landmarks[:4] - expected).max())
        refined_errors.append(np.abs(refined.landmarks[:4] - expected).max())
    # Raw keypoints of a rolled face are off by 2-6 px here; refined ones by 1-4.
    assert max(refined_errors) < 5.0
    assert np.mean(refined_errors) < 0.7 * np.mean(raw_errors)


def test_refine_sharpens_a_small_face_in_a_big_frame(detector: FaceDetector, face) -> None:
    (reference,) = detector.detect(face)
    frame = paste(background(1080, 1920, seed=7), face, 700, 300, 400)
    (found,) = detector.detect(frame)
    expected = reference.landmarks[:4] * 1.6 + (700, 300)
    refined = detector.refine(frame, found)
    assert np.abs(refined.landmarks[:4] - expected).max() < 4.0


def test_tiles_cover_wide_and_tall_frames(detector: FaceDetector) -> None:
    assert detector.tiles(1080, 1920) == [(0, 0, 1080), (840, 0, 1080)]
    assert detector.tiles(1920, 1080) == [(0, 0, 1080), (0, 840, 1080)]
    assert detector.tiles(480, 640) == [(0, 0, 480), (160, 0, 480)]
    assert detector.tiles(1000, 1000) == []  # square: the whole frame is enough
    assert detector.tiles(250, 400) == []  # small: tiles would add nothing


def test_tiling_finds_a_small_face_in_a_full_hd_frame(detector: FaceDetector, faces) -> None:
    # An LFW image at 80% (eyes about 34 px apart) in 1920x1080: letterboxed whole, the face
    # is about 10 px at the model's input.
    found_plain = found_tiled = 0
    for index, face in enumerate(faces):
        x, y = 300 + 250 * index, 200 + 100 * index
        frame = paste(background(1080, 1920, seed=index), face, x, y, 200)
        centre = np.array([x + 125.5 * 0.8, y + 113.0 * 0.8])
        for tiled in (False, True):
            hits = [
                d
                for d in detector.detect(frame, tiled=tiled)
                if np.linalg.norm(d.landmarks[:2].mean(axis=0) - centre) < 16
            ]
            if tiled:
                found_tiled += len(hits)
            else:
                found_plain += len(hits)
    assert found_tiled == len(faces) and found_plain < found_tiled


def test_tiling_merges_duplicates(detector: FaceDetector, face) -> None:
    frame = paste(background(480, 640, seed=2), face, 200, 100, 250)  # inside both tiles
    assert len(detector.detect(frame, tiled=True)) == 1


def test_tiles_only_if_empty_skips_them_when_the_frame_shows_a_face(
    detector: FaceDetector, faces
) -> None:
    """A big face found whole makes the tiles (and the small face only they see) unneeded."""
    frame = paste(background(1080, 1920, seed=3), faces[0], 1500, 700, 200)  # small: tiles only
    frame = paste(frame, faces[1], 200, 200, 700)  # big: the whole frame sees it
    everything = detector.detect(frame, tiled=True)
    assert len(everything) == 2
    (whole,) = detector.detect(frame)
    (skipped,) = detector.detect(frame, tiled=True, tiles_only_if_empty=True)
    np.testing.assert_array_equal(skipped.landmarks, whole.landmarks)
    small_only = paste(background(1080, 1920, seed=3), faces[0], 1500, 700, 200)
    assert len(detector.detect(small_only, tiled=True, tiles_only_if_empty=True)) == 1
