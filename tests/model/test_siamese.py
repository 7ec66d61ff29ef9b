"""The shared Siamese wrapper: input and layer names, one shared tower, tower lookup."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from facegate.model.compact import make_compact_embedding
from facegate.model.siamese import embedding_tower, make_siamese
from facegate.model.tf_runtime import import_keras

keras = import_keras()


def test_wrapper_names_and_shared_tower() -> None:
    tower = make_compact_embedding(32, 8)
    model = make_siamese(tower, name="Tiny")
    assert model.name == "Tiny"
    assert [i.name for i in model.inputs] == ["input_img", "validation_img"]
    assert embedding_tower(model) is tower
    assert model.count_params() == tower.count_params() + 9


def test_identical_inputs_score_the_bias_only(tiny_tower_factory: Any) -> None:
    model = make_siamese(tiny_tower_factory())
    kernel = model.get_layer("classifier").get_weights()[0]
    model.get_layer("classifier").set_weights([kernel, np.array([1.5], np.float32)])
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    out = np.asarray(model([x, x], training=False))
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-1.5)), rtol=1e-5)


def test_tower_lookup_needs_exactly_one_tower() -> None:
    a = keras.Input((3,))
    with pytest.raises(ValueError, match="one embedding tower"):
        embedding_tower(keras.Model(a, keras.layers.Dense(1)(a)))
