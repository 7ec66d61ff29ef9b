"""The registered layers: L1Dist and L2Normalize compute what they say and serialise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facegate.model.layers import L1Dist, L2Normalize
from facegate.model.tf_runtime import import_keras

keras = import_keras()


def test_l1dist_is_absolute_difference() -> None:
    a = np.array([[1.0, -2.0, 3.0]], np.float32)
    b = np.array([[0.5, 2.0, 3.0]], np.float32)
    np.testing.assert_allclose(np.asarray(L1Dist()(a, b)), [[0.5, 4.0, 0.0]])


def test_l1dist_keeps_its_name_and_dtype() -> None:
    # The seed's L1Dist dropped **kwargs, so name= was silently ignored.
    layer = L1Dist(name="distance", dtype="float64")
    assert layer.name == "distance"
    assert layer.dtype == "float64"


def test_l1dist_config_round_trip() -> None:
    layer = L1Dist(name="distance")
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == "facegate>L1Dist"
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)), safe_mode=True)
    assert isinstance(clone, L1Dist)
    assert clone.name == "distance"


def test_l2normalize_gives_unit_rows_and_round_trips() -> None:
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    out = np.asarray(L2Normalize()(x))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out * np.linalg.norm(x, axis=1, keepdims=True), x, rtol=1e-5)
    layer = L2Normalize(axis=-1, epsilon=1e-6, name="norm")
    clone = L2Normalize.from_config(layer.get_config())
    assert (clone.axis, clone.epsilon, clone.name) == (-1, 1e-6, "norm")


def test_l2normalize_of_zero_is_zero_not_nan() -> None:
    out = np.asarray(L2Normalize()(np.zeros((1, 4), np.float32)))
    assert np.all(out == 0)


def test_model_with_both_layers_saves_and_loads_in_safe_mode(tmp_path: Path) -> None:
    a = keras.Input((4,))
    b = keras.Input((4,))
    out = L2Normalize()(L1Dist(name="distance")(a, b))
    model = keras.Model([a, b], out)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(2).random((3, 4), dtype=np.float32)
    y = np.random.default_rng(3).random((3, 4), dtype=np.float32)
    np.testing.assert_array_equal(
        model.predict([x, y], verbose=0), loaded.predict([x, y], verbose=0)
    )
    assert isinstance(loaded.get_layer("distance"), L1Dist)
