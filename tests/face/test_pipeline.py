"""FacePipeline end to end: frames, bytes and files to a face or a named reason."""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from face_frames import background, flat_png, jpeg_with_orientation, paste, png_chunk

from facegate.config import FaceConfig
from facegate.face.align import DEFAULT_TEMPLATE, default_spec
from facegate.face.pipeline import FacePipeline
from facegate.face.types import AlignSpec, Reason


def test_lfw_face_gives_an_aligned_crop(pipeline: FacePipeline, faces) -> None:
    for face in faces:
        result = pipeline.process(face)
        assert result.ok and result.reason is None and result.faces_seen == 1
        assert result.face.crop.shape == (100, 100, 3) and result.face.crop.dtype == np.uint8
        assert 0.0 <= result.face.quality.score <= 1.0


def test_crop_size_follows_the_spec(face: np.ndarray) -> None:
    spec = AlignSpec(size=64, template=DEFAULT_TEMPLATE)
    result = FacePipeline(FaceConfig(), spec).process(face)
    assert result.face.crop.shape == (64, 64, 3)


def test_no_face(pipeline: FacePipeline) -> None:
    result = pipeline.process(background(480, 640, seed=11))
    assert not result.ok and result.reason is Reason.NO_FACE and result.faces_seen == 0


@pytest.fixture(scope="module")
def two_faces(faces) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """A 640x480 frame: a big face off to the left and a smaller one at the centre.

    Returns the frame and the expected centre of each face's eyes (big, small).
    """
    frame = paste(background(480, 640, seed=4), faces[1], 0, 0, 300)
    frame = paste(frame, faces[2], 245, 165, 150)
    big = (125.5 * 1.2, 113.0 * 1.2)
    small = (245 + 125.5 * 0.6, 165 + 113.0 * 0.6)
    return frame, big, small


def _eye_centre(result) -> np.ndarray:
    return result.face.detection.landmarks[:2].mean(axis=0)


def test_two_faces_largest_center_reject(two_faces, face) -> None:
    frame, big, small = two_faces
    keep = FacePipeline(FaceConfig(multiple_faces="largest"), default_spec(100))
    largest = keep.process(frame)
    assert largest.ok and largest.faces_seen == 2
    assert np.linalg.norm(_eye_centre(largest) - big) < 15
    assert np.linalg.norm(_eye_centre(keep.process(frame, select="largest")) - big) < 15
    centre = keep.process(frame, select="center")
    assert centre.ok and np.linalg.norm(_eye_centre(centre) - small) < 10
    reject = FacePipeline(FaceConfig(multiple_faces="reject"), default_spec(100))
    refused = reject.process(frame)
    assert refused.reason is Reason.MULTIPLE_FACES and refused.faces_seen == 2
    # Explicit selections override the reject policy; one face is never "multiple".
    assert reject.process(frame, select="center").ok
    assert reject.process(face).ok


@pytest.mark.parametrize(
    ("degrade", "reason"),
    [
        (lambda f: cv2.GaussianBlur(f, (0, 0), 3.0), Reason.TOO_BLURRED),
        (lambda f: (f * 0.2).astype(np.uint8), Reason.TOO_DARK),
        (lambda f: (255 - (255 - f.astype(np.float32)) * 0.2).astype(np.uint8), Reason.TOO_BRIGHT),
        (lambda f: cv2.resize(f, (100, 100), interpolation=cv2.INTER_AREA), Reason.FACE_TOO_SMALL),
    ],
)
def test_quality_reasons(pipeline: FacePipeline, face, degrade, reason: Reason) -> None:
    result = pipeline.process(degrade(face))
    assert result.reason is reason and result.face is None and result.faces_seen == 1


def test_face_in_a_full_hd_frame(pipeline: FacePipeline, face) -> None:
    frame = paste(background(1080, 1920, seed=8), face, 1300, 600, 400)
    result = pipeline.process(frame)
    assert result.ok
    expected = np.array([1300 + 125.3 * 1.6, 600 + 113.3 * 1.6])
    assert np.linalg.norm(_eye_centre(result) - expected) < 12


def test_bytes_and_files(pipeline: FacePipeline, face_paths: list[Path], tmp_path: Path) -> None:
    assert pipeline.process_file(face_paths[0]).ok
    assert pipeline.process_bytes(face_paths[0].read_bytes()).ok
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    assert pipeline.process_file(text).reason is Reason.UNREADABLE
    assert pipeline.process_file(tmp_path / "missing.jpg").reason is Reason.UNREADABLE
    assert pipeline.process_bytes(b"").reason is Reason.UNREADABLE
    truncated = face_paths[0].read_bytes()[:3000]
    assert pipeline.process_bytes(truncated).reason is Reason.UNREADABLE


def test_bomb_and_huge_image_are_too_large(pipeline: FacePipeline) -> None:
    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")
    assert pipeline.process_bytes(bomb).reason is Reason.TOO_LARGE
    small_limit = FacePipeline(FaceConfig(max_image_side=1000), default_spec(100))
    assert small_limit.process_bytes(flat_png(1200, 10, (9, 9, 9))).reason is Reason.TOO_LARGE


def test_exif_rotated_photo_of_a_face(pipeline: FacePipeline, face, tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    path.write_bytes(jpeg_with_orientation(np.ascontiguousarray(np.rot90(face, k=-1)), 8))
    result = pipeline.process_file(path)
    assert result.ok
    right, left = result.face.detection.landmarks[:2]
    assert right[0] < left[0] and abs(right[1] - left[1]) < 8


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (7, 3000, 3)])
def test_tiny_and_odd_frames(pipeline: FacePipeline, shape: tuple) -> None:
    assert pipeline.process(np.zeros(shape, np.uint8)).reason is Reason.NO_FACE


def test_grey_image_file(pipeline: FacePipeline, face, tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), cv2.cvtColor(face, cv2.COLOR_RGB2GRAY))
    assert pipeline.process_file(path).ok


def test_threads_share_one_pipeline(pipeline: FacePipeline, faces) -> None:
    serial = [pipeline.process(face).face.crop for face in faces]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda f: pipeline.process(f).face.crop, faces * 3))
    for index, crop in enumerate(parallel):
        np.testing.assert_array_equal(crop, serial[index % len(faces)])


def test_small_face_in_full_hd_needs_tiles(face) -> None:
    frame = paste(background(1080, 1920, seed=9), face, 1500, 700, 200)
    tiled = FacePipeline(FaceConfig(), default_spec(100)).process(frame)
    assert tiled.ok
    expected = np.array([1500 + 125.5 * 0.8, 700 + 113.0 * 0.8])
    assert np.linalg.norm(_eye_centre(tiled) - expected) < 8


def test_detect_refines_landmarks_for_every_caller(pipeline: FacePipeline, face) -> None:
    rotation = cv2.getRotationMatrix2D((125, 125), 30.0, 1.0)
    tilted = cv2.warpAffine(face, rotation, (250, 250), borderMode=cv2.BORDER_REPLICATE)
    (raw,) = pipeline.detector.detect(tilted)
    (refined,) = pipeline.detect(tilted)
    np.testing.assert_allclose(
        refined.landmarks, pipeline.detector.refine(tilted, raw).landmarks, atol=1e-4
    )
    plain = FacePipeline(FaceConfig(), default_spec(100), refine=False)
    np.testing.assert_array_equal(plain.detect(tilted)[0].landmarks, raw.landmarks)
    # The pipeline's crop of the tilted face has level eyes.
    result = pipeline.process(tilted)
    right, left = result.face.detection.landmarks[:2]
    assert abs(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])) + 30.0) < 4.0


def test_process_aligns_on_the_same_landmarks_as_detect(pipeline: FacePipeline, two_faces) -> None:
    frame, _, _ = two_faces
    detections = pipeline.detect(frame)
    chosen = pipeline.select(detections, *frame.shape[:2], select="center")
    result = pipeline.process(frame, select="center")
    np.testing.assert_allclose(result.face.detection.landmarks, chosen.landmarks, atol=1e-4)
