"""Scheduler fixtures: tiny real models, a face pipeline, and a site of enrolled LFW people."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scheduler_support import PEOPLE, Site, build_models, enroll_people, site_config

from facegate.storage.registry import open_registry


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
