"""The seed's architecture, layer for layer (``../shared/SEED.md``): kept as the baseline.

``make_embedding()``: 100x100x3 in [0, 1] -> 4096 sigmoid features, 38,960,448 parameters.
``make_siamese_model()``: the Siamese wrapper around it, 38,964,545 parameters.
"""

from __future__ import annotations

from typing import Any

from facegate.model.siamese import EMBEDDING_LAYER, make_siamese
from facegate.model.tf_runtime import import_keras

keras = import_keras()
layers = keras.layers

SEED_INPUT_SIZE = 100
SEED_EMBEDDING_DIM = 4096


def make_embedding(input_size: int = SEED_INPUT_SIZE) -> Any:
    """The seed's embedding CNN: (N, S, S, 3) float32 in [0, 1] -> (N, 4096) in (0, 1)."""
    inp = keras.Input(shape=(input_size, input_size, 3), name="input_image")
    c1 = layers.Conv2D(64, (10, 10), activation="relu")(inp)
    # The seed's MaxPooling2D(64, (2, 2)) is pool_size=64, strides=2: with "same" padding a
    # 64x64 window moving by 2. Output shapes (46, 20, 9) come from the stride alone; kept as is.
    m1 = layers.MaxPooling2D(64, (2, 2), padding="same")(c1)
    c2 = layers.Conv2D(128, (7, 7), activation="relu")(m1)
    m2 = layers.MaxPooling2D(64, (2, 2), padding="same")(c2)
    c3 = layers.Conv2D(128, (4, 4), activation="relu")(m2)
    m3 = layers.MaxPooling2D(64, (2, 2), padding="same")(c3)
    c4 = layers.Conv2D(256, (4, 4), activation="relu")(m3)
    f1 = layers.Flatten()(c4)
    d1 = layers.Dense(SEED_EMBEDDING_DIM, activation="sigmoid")(f1)
    # A single input (not [inp]): calling the tower on a bare tensor then warns of nothing.
    return keras.Model(inputs=inp, outputs=d1, name=EMBEDDING_LAYER)


def make_siamese_model(embedding: Any = None) -> Any:
    """The seed's Siamese model around ``embedding`` (a fresh ``make_embedding()`` if None)."""
    return make_siamese(embedding if embedding is not None else make_embedding())
