"""The seed's architecture, layer for layer: parameter counts, output shapes, compilation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from facegate.model.layers import L1Dist
from facegate.model.seed import make_embedding, make_siamese_model
from facegate.model.siamese import compile_siamese

# From SEED.md's model summaries.
EMBEDDING_SHAPES = [
    ("InputLayer", (None, 100, 100, 3), 0),
    ("Conv2D", (None, 91, 91, 64), 19_264),
    ("MaxPooling2D", (None, 46, 46, 64), 0),
    ("Conv2D", (None, 40, 40, 128), 401_536),
    ("MaxPooling2D", (None, 20, 20, 128), 0),
    ("Conv2D", (None, 17, 17, 128), 262_272),
    ("MaxPooling2D", (None, 9, 9, 128), 0),
    ("Conv2D", (None, 6, 6, 256), 524_544),
    ("Flatten", (None, 9216), 0),
    ("Dense", (None, 4096), 37_752_832),
]


@pytest.fixture(scope="module")
def seed_model() -> Any:
    """The seed's Siamese model (built once: 39 M parameters)."""
    return make_siamese_model()


def test_embedding_layers_match_the_seed(seed_model: Any) -> None:
    embedding = seed_model.get_layer("embedding")
    got = [
        (type(layer).__name__, tuple(layer.output.shape), layer.count_params())
        for layer in embedding.layers
    ]
    assert got == EMBEDDING_SHAPES
    assert embedding.count_params() == 38_960_448


def test_seed_pooling_is_pool_64_stride_2(seed_model: Any) -> None:
    pools = [layer for layer in seed_model.get_layer("embedding").layers if "pool" in layer.name]
    assert [(p.pool_size, p.strides, p.padding) for p in pools] == [((64, 64), (2, 2), "same")] * 3


def test_siamese_layers_match_the_seed(seed_model: Any) -> None:
    assert seed_model.name == "SiameseNetwork"
    assert seed_model.count_params() == 38_964_545
    assert [i.name for i in seed_model.inputs] == ["input_img", "validation_img"]
    assert isinstance(seed_model.get_layer("distance"), L1Dist)
    assert tuple(seed_model.get_layer("distance").output.shape) == (None, 4096)
    classifier = seed_model.get_layer("classifier")
    assert classifier.count_params() == 4_097
    assert tuple(seed_model.output.shape) == (None, 1)


def test_seed_outputs_are_probabilities(seed_model: Any) -> None:
    x = np.random.default_rng(0).random((2, 100, 100, 3), dtype=np.float32)
    out = seed_model.predict([x, x[::-1]], verbose=0)
    assert out.shape == (2, 1)
    assert np.all((out >= 0) & (out <= 1))


def test_given_embedding_is_shared() -> None:
    embedding = make_embedding()
    model = make_siamese_model(embedding)
    assert model.get_layer("embedding") is embedding


def test_compile_as_the_seed(seed_model: Any) -> None:
    compile_siamese(seed_model)
    assert type(seed_model.loss).__name__ == "BinaryCrossentropy"
    assert type(seed_model.optimizer).__name__ == "Adam"
    assert float(seed_model.optimizer.learning_rate.numpy()) == pytest.approx(1e-4)
    metrics = seed_model.get_compile_config()["metrics"]
    assert [m["class_name"] for m in metrics] == ["Precision", "Recall"]
