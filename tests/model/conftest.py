"""Fixtures of the model tests: tiny real Keras Siamese models and their model directories.

The tiny tower is a few layers (conv, batch norm, depthwise conv, pooling, dense, L2Normalize)
so that building, tracing, saving and loading take well under a second; the compact and seed
towers have their own tests. It is saved under the "compact" architecture (its preprocessing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

TINY_SIZE = 32
TINY_DIM = 16
TEMPLATE = ((0.34, 0.46), (0.66, 0.46), (0.5, 0.64), (0.5, 0.82))


def randomise_head(siamese: Any, seed: int = 0) -> None:
    """Give the classifier spread-out weights so scores are not all about 0.5."""
    rng = np.random.default_rng(seed)
    layer = siamese.get_layer("classifier")
    kernel, bias = layer.get_weights()
    layer.set_weights([rng.normal(0, 10.0, kernel.shape).astype(np.float32), bias + 0.5])


def make_tiny_tower(size: int = TINY_SIZE, dim: int = TINY_DIM) -> Any:
    """A small real tower: (N, size, size, 3) float32 -> (N, dim) unit-norm float32."""
    from facegate.model.layers import L2Normalize
    from facegate.model.tf_runtime import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(size * 1000 + dim)
    layers = keras.layers
    inp = keras.Input((size, size, 3), name="input_image")
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inp)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.Dense(dim)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, L2Normalize()(x), name="embedding")


@pytest.fixture(scope="session")
def tiny_tower_factory() -> Any:
    """``make_tiny_tower`` for tests that need a fresh tower."""
    return make_tiny_tower


@pytest.fixture(scope="module")
def tiny_siamese() -> Any:
    """An untrained tiny Siamese model on 32x32 crops, 16-d embeddings, random head."""
    from facegate.model.siamese import make_siamese

    model = make_siamese(make_tiny_tower())
    randomise_head(model)
    return model


@pytest.fixture(scope="module")
def tiny_model_dir(tiny_siamese: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_siamese`` saved as a model directory (float32 weights)."""
    from facegate.model.bundle import save_model_dir

    out = tmp_path_factory.mktemp("models") / "tiny"
    save_model_dir(
        tiny_siamese,
        out,
        name="tiny",
        arch="compact",
        template=TEMPLATE,
        training={"data": "none"},
        metrics={"lfw_devtest": {"accuracy": 0.5}},
    )
    return out


@pytest.fixture
def crops() -> np.ndarray:
    """Six random (32, 32, 3) uint8 crops."""
    return np.random.default_rng(1).integers(0, 256, (6, TINY_SIZE, TINY_SIZE, 3), np.uint8)
