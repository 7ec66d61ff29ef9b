"""The Siamese wrapper shared by every architecture: one tower, L1 distance, Dense(1, sigmoid).

``make_siamese(tower)`` gives a model with inputs ``input_img`` and ``validation_img``
((N, S, S, 3) float32, already preprocessed), the shared ``tower``, an ``L1Dist`` layer named
``distance`` and a ``Dense(1, sigmoid)`` named ``classifier``: its output (N, 1) is the
probability in [0, 1] that the two faces are the same person (higher is more similar).
"""

from __future__ import annotations

import logging
from typing import Any

from facegate.model.layers import L1Dist
from facegate.model.tf_runtime import import_keras

keras = import_keras()
logger = logging.getLogger(__name__)

DISTANCE_LAYER = "distance"
CLASSIFIER_LAYER = "classifier"
EMBEDDING_LAYER = "embedding"


def make_siamese(tower: Any, name: str = "SiameseNetwork") -> Any:
    """Wrap an embedding ``tower`` (a keras.Model (N, S, S, 3) -> (N, D)) in the Siamese head."""
    shape = tuple(tower.input_shape[1:])
    input_image = keras.Input(shape=shape, name="input_img")
    validation_image = keras.Input(shape=shape, name="validation_img")
    distances = L1Dist(name=DISTANCE_LAYER)(tower(input_image), tower(validation_image))
    classifier = keras.layers.Dense(1, activation="sigmoid", name=CLASSIFIER_LAYER)(distances)
    return keras.Model(inputs=[input_image, validation_image], outputs=classifier, name=name)


def compile_siamese(model: Any, learning_rate: float = 1e-4) -> Any:
    """Compile as the seed did: binary cross-entropy, Adam, Precision and Recall; returns it."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.Precision(name="precision"), keras.metrics.Recall(name="recall")],
    )
    return model


def embedding_tower(siamese: Any) -> Any:
    """The shared tower inside a Siamese model (the one nested keras.Model layer)."""
    towers = [layer for layer in siamese.layers if isinstance(layer, keras.Model)]
    if len(towers) != 1:
        raise ValueError(f"{siamese.name}: expected one embedding tower, found {len(towers)}")
    return towers[0]
