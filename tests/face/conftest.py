"""Fixtures for the face-pipeline tests: real LFW faces, a shared detector, frame builders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facegate.config import FaceConfig
from facegate.face.align import default_spec
from facegate.face.detect import FaceDetector
from facegate.face.image_io import load_image
from facegate.face.pipeline import FacePipeline

# Frontal LFW faces the full-range detector finds with a score of at least 0.75.
FACE_NAMES = (
    "George_W_Bush_0001",
    "Serena_Williams_0001",
    "Junichiro_Koizumi_0001",
    "Gloria_Macapagal_Arroyo_0001",
    "AJ_Lamas_0001",
)


def lfw_path(root: Path, name: str) -> Path:
    """The file of an LFW image named ``<Person>_<NNNN>``."""
    return root / name.rsplit("_", 1)[0] / f"{name}.jpg"


@pytest.fixture(scope="session")
def face_paths(lfw_images: Path) -> list[Path]:
    """Paths of a few frontal LFW faces of different people."""
    return [lfw_path(lfw_images, name) for name in FACE_NAMES]


@pytest.fixture(scope="session")
def faces(face_paths: list[Path]) -> list[np.ndarray]:
    """Those faces as (250, 250, 3) uint8 RGB arrays."""
    return [load_image(path) for path in face_paths]


@pytest.fixture(scope="session")
def face(faces: list[np.ndarray]) -> np.ndarray:
    """One frontal LFW face, (250, 250, 3) uint8 RGB."""
    return faces[0]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    """The default full-range detector, built once per test module."""
    return FaceDetector("full_range", min_score=0.6)


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    """A FacePipeline with the default config and a 100 px crop."""
    return FacePipeline(FaceConfig(), default_spec(100))
