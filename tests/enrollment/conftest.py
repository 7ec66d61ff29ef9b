"""Enrollment fixtures: a tiny real model, the face pipeline, a registry and bad images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from enroll_fixtures import TEST_FACE_CONFIG, build_tiny_model, make_bad_images

from facegate.config import FaceConfig, FacegateConfig, parse_config
from facegate.storage.registry import Registry, open_registry


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Siamese model directory."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):  # -> LoadedModel (TensorFlow is imported lazily)
    """The tiny model, loaded and verified."""
    from facegate.model.bundle import load_model_dir

    return load_model_dir(tiny_model_dir)


@pytest.fixture(scope="session")
def pipeline(tiny_model):  # -> FacePipeline
    """A face pipeline cropping the way the tiny model wants."""
    from facegate.face.pipeline import FacePipeline

    return FacePipeline(FaceConfig(**TEST_FACE_CONFIG), tiny_model.manifest.align_spec)


@pytest.fixture
def bad_images(tmp_path: Path, lfw_images: Path) -> dict[str, Path]:
    """A text file named .jpg, an image without a face, and a tiny image of a face."""
    return make_bad_images(tmp_path / "bad", lfw_images)


@pytest.fixture
def config(tmp_path: Path, tiny_model_dir: Path) -> FacegateConfig:
    """A config with a private data dir and a look-alike threshold suited to the tiny model."""
    return parse_config(
        {
            "storage": {"data_dir": str(tmp_path / "data")},
            "model": {"path": str(tiny_model_dir)},
            "face": TEST_FACE_CONFIG,
            "enrollment": {"min_images": 3, "lookalike_score": 0.15},
        }
    )


@pytest.fixture
def registry(config: FacegateConfig) -> Iterator[Registry]:
    """An empty registry on a SQLite file in the tmp data dir."""
    reg = open_registry(config.storage)
    try:
        yield reg
    finally:
        reg.close()
