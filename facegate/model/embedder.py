"""Embedders: aligned uint8 crops in, float32 embeddings out, behind one small Protocol.

``Embedder`` is what the rest of facegate depends on; ``TensorFlowEmbedder`` runs a Keras
tower through one traced ``tf.function`` (the manifest's pixel transform included), batched.
A LiteRT embedder (``runtime="litert"``) will implement the same Protocol.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

import numpy as np

from facegate.errors import ModelError
from facegate.model.manifest import Preprocessing

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32


@runtime_checkable
class Embedder(Protocol):
    """Turns aligned face crops into embeddings."""

    @property
    def input_size(self) -> int:
        """Side S of the square crops ``embed`` takes, in pixels."""
        ...

    @property
    def embedding_dim(self) -> int:
        """Length D of one embedding."""
        ...

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB crops -> (N, D) float32 embeddings (N may be 0)."""
        ...


def check_crops(crops: np.ndarray, input_size: int) -> np.ndarray:
    """Return ``crops`` as a (N, S, S, 3) uint8 array; a single (S, S, 3) crop gets N = 1."""
    crops = np.asarray(crops)
    if crops.ndim == 3:
        crops = crops[None]
    if crops.ndim != 4 or crops.shape[1:] != (input_size, input_size, 3):
        raise ModelError(
            f"expected crops of shape (N, {input_size}, {input_size}, 3), got {crops.shape}"
        )
    if crops.dtype != np.uint8:
        raise ModelError(f"expected uint8 crops, got {crops.dtype}")
    return crops


class TensorFlowEmbedder:
    """An ``Embedder`` running a Keras tower (N, S, S, 3) float32 -> (N, D) on TensorFlow."""

    def __init__(
        self, tower: Any, preprocessing: Preprocessing, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        from facegate.model.tf_runtime import import_tf

        tf = import_tf()
        self.tower = tower
        self.preprocessing = preprocessing
        self.batch_size = batch_size
        self._input_size = int(tower.input_shape[1])
        self._embedding_dim = int(tower.output_shape[-1])
        scale = tf.constant(preprocessing.scale, tf.float32)
        offset = tf.constant(np.asarray(preprocessing.offset, np.float32).reshape(1, 1, 1, 3))
        size = self._input_size

        # One graph for every batch size (None), traced once: the seed's per-image
        # ``model.predict`` rebuilt its input pipeline on every call.
        @tf.function(
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)],
            reduce_retracing=True,
        )
        def run(crops: Any) -> Any:
            x = tf.cast(crops, tf.float32) * scale + offset
            return tower(x, training=False)

        self._run = run

    @property
    def input_size(self) -> int:
        """Side S of the square crops ``embed`` takes, in pixels."""
        return self._input_size

    @property
    def embedding_dim(self) -> int:
        """Length D of one embedding."""
        return self._embedding_dim

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB crops -> (N, D) float32 embeddings, ``batch_size`` at a time."""
        crops = check_crops(crops, self._input_size)
        if len(crops) == 0:
            return np.zeros((0, self._embedding_dim), np.float32)
        parts = [
            self._run(crops[i : i + self.batch_size]).numpy()
            for i in range(0, len(crops), self.batch_size)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)
