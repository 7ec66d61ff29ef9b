"""Which model enrolls, and loading it with a matching face pipeline (TensorFlow, lazily)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from facegate.config import FacegateConfig
from facegate.storage.registry import Registry

if TYPE_CHECKING:
    from facegate.face.pipeline import FacePipeline
    from facegate.model.bundle import LoadedModel

logger = logging.getLogger(__name__)


def choose_model_dir(
    registry: Registry, config: FacegateConfig, override: Path | None = None
) -> Path | None:
    """The model directory to embed with: ``override``, else the registry's active model
    (when its directory still exists), else ``config.model.path`` (None: the packaged one)."""
    if override is not None:
        return Path(override)
    active = registry.active_model()
    if active is not None and active.path and Path(active.path).is_dir():
        return Path(active.path)
    if active is not None:
        logger.warning(
            "the active model's directory %s is missing; using the configured one", active.path
        )
    return config.model.path


def load_tools(
    registry: Registry, config: FacegateConfig, override: Path | None = None
) -> tuple[FacePipeline, LoadedModel]:
    """Load the enrollment model and a face pipeline cropping the way that model wants."""
    from facegate.face.pipeline import FacePipeline
    from facegate.model.bundle import load_model_dir

    model = load_model_dir(
        choose_model_dir(registry, config, override), config.model.runtime, config.model.variant
    )
    return FacePipeline(config.face, model.manifest.align_spec), model
