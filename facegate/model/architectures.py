"""The registry of embedding architectures: name -> how to build its tower and feed it.

Importing this module does not import TensorFlow: builders import their module when called.
Another module adds an architecture with ``register_architecture(...)`` and one import line at
the bottom of this file (so the registry is complete whenever it is imported).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facegate.errors import ModelError
from facegate.model.manifest import Preprocessing

logger = logging.getLogger(__name__)

Template = tuple[tuple[float, float], ...]
# builder(input_size) -> keras.Model tower: (N, S, S, 3) float32 preprocessed -> (N, D) float32.
TowerBuilder = Callable[[int], Any]


@dataclass(frozen=True)
class ArchitectureSpec:
    """How to build one architecture and feed it: its default crop and pixel transform.

    ``template`` is the landmark template in [0, 1] crop coordinates (``AlignSpec`` order);
    None means the face pipeline's default for ``input_size``.
    """

    name: str
    builder: TowerBuilder
    input_size: int
    preprocessing: Preprocessing
    template: Template | None = None
    description: str = ""

    def build_tower(self, input_size: int | None = None) -> Any:
        """A fresh, untrained embedding tower (keras.Model) at ``input_size`` or the default."""
        return self.builder(input_size or self.input_size)

    def build_siamese(self, input_size: int | None = None) -> Any:
        """A fresh, untrained Siamese model around a new tower (not compiled)."""
        from facegate.model.siamese import make_siamese

        return make_siamese(self.build_tower(input_size))

    def default_template(self, input_size: int | None = None) -> Template:
        """The landmark template to store in a manifest for this architecture."""
        if self.template is not None:
            return self.template
        from facegate.face.align import default_spec

        return tuple(default_spec(input_size or self.input_size).template)


ARCHITECTURES: dict[str, ArchitectureSpec] = {}


def register_architecture(
    name: str,
    builder: TowerBuilder,
    input_size: int,
    preprocessing: Preprocessing,
    template: Template | None = None,
    description: str = "",
) -> ArchitectureSpec:
    """Add an architecture under ``name``; a different spec under a taken name is a ModelError."""
    spec = ArchitectureSpec(name, builder, input_size, preprocessing, template, description)
    existing = ARCHITECTURES.get(name)
    if existing is not None and existing != spec:
        raise ModelError(f"architecture {name!r} is already registered")
    ARCHITECTURES[name] = spec
    return spec


def get_architecture(name: str) -> ArchitectureSpec:
    """The spec registered under ``name``; a ModelError listing the known names otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ModelError(f"unknown architecture {name!r} (known: {known})") from None


def _lazy(module: str, function: str, **kwargs: Any) -> TowerBuilder:
    """A builder that imports ``module`` (and TensorFlow) only when a tower is built."""

    def build(input_size: int) -> Any:
        return getattr(importlib.import_module(module), function)(input_size, **kwargs)

    build.__qualname__ = build.__name__ = f"{function}"
    return build


register_architecture(
    "seed",
    _lazy("facegate.model.seed", "make_embedding"),
    input_size=100,
    preprocessing=Preprocessing(scale=1.0 / 255.0, offset=(0.0, 0.0, 0.0)),
    description="the seed's CNN: 4096-d sigmoid features, 38.96 M parameters",
)
register_architecture(
    "compact",
    _lazy("facegate.model.compact", "make_compact_embedding"),
    input_size=112,
    # Centred on 0 with unit-ish range: (x - 127.5) / 128.
    preprocessing=Preprocessing(scale=1.0 / 128.0, offset=(-127.5 / 128.0,) * 3),
    description="MobileFaceNet-like: 128-d unit-norm embedding, about 1 M parameters",
)

# Architectures defined in other modules register themselves on import (one line each):
from facegate.model import resnet  # noqa: E402, F401  (dlib_resnet)
