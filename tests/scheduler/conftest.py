"""Scheduler fixtures: tiny real models, a face pipeline, and a site of enrolled LFW people."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scheduler_support import PEOPLE, build_models, person_images

from facegate.config import FacegateConfig, parse_config
from facegate.storage.registry import Registry, open_registry


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``exact``, ``reversed`` and ``lenient`` on one tower; ``other`` is an exact head on a
    second tower (embeddings differ from the first tower's)."""
    root = tmp_path_factory.mktemp("models")
    dirs = build_models(root, seed=0)
    dirs["other"] = build_models(root, seed=1, heads=("exact",))["exact"]
    return dirs


@pytest.fixture(scope="session")
def models(model_dirs: dict[str, Path]) -> dict[str, Any]:
    """The models of ``model_dirs``, loaded and verified (name -> LoadedModel)."""
    from facegate.model.bundle import load_model_dir

    return {name: load_model_dir(path) for name, path in model_dirs.items()}


@pytest.fixture(scope="session")
def pipeline(models: dict[str, Any]) -> Any:
    """A face pipeline cropping the way the tiny models want (112 px)."""
    from facegate.config import FaceConfig
    from facegate.face.pipeline import FacePipeline

    return FacePipeline(FaceConfig(), models["exact"].manifest.align_spec)


def site_config(tmp_path: Path, model_dir: Path, **scheduler: Any) -> FacegateConfig:
    """A config with a private data dir, the given model and scheduler settings."""
    return parse_config(
        {
            "storage": {"data_dir": str(tmp_path / "data")},
            "model": {"path": str(model_dir)},
            # The untrained tower maps faces close together: only true copies are duplicates.
            "enrollment": {"duplicate_similarity": 0.99999, "min_images": 3},
            "scheduler": scheduler,
        }
    )


@dataclass
class Site:
    """An enrolled site: config, registry, the model galleries were enrolled with."""

    config: FacegateConfig
    registry: Registry
    model: Any
    pipeline: Any
    lfw_images: Path


def enroll_people(site: Site, people: tuple[str, ...], count: int, start: int = 0) -> None:
    """Enroll each LFW person with ``count`` images (names are lower-case surnames)."""
    from facegate.enrollment.enroll import enroll

    for person in people:
        name = person.split("_")[-1].lower()
        files = person_images(site.lfw_images, person, count, start)
        enroll(site.registry, site.pipeline, site.model, name, files, site.config)


@pytest.fixture
def site(
    tmp_path: Path, model_dirs: dict[str, Path], models: dict[str, Any], pipeline: Any, lfw_images
) -> Iterator[Site]:
    """Three LFW people enrolled with five images each by the ``exact`` model (active)."""
    config = site_config(tmp_path, model_dirs["exact"])
    registry = open_registry(config.storage)
    built = Site(config, registry, models["exact"], pipeline, lfw_images)
    try:
        enroll_people(built, PEOPLE[:3], 5)
        yield built
    finally:
        registry.close()
