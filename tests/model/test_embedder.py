"""The TensorFlow embedder: batching, input checks, the manifest's pixel transform."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from facegate.errors import ModelError
from facegate.model.embedder import Embedder, TensorFlowEmbedder
from facegate.model.manifest import Preprocessing
from facegate.model.siamese import embedding_tower

# The tiny model of conftest.py (tiny_siamese, tiny_model_dir).
TINY_SIZE = 32
TINY_DIM = 16


@pytest.fixture(scope="module")
def tower(tiny_siamese: Any) -> Any:
    """The tiny model's embedding tower."""
    return embedding_tower(tiny_siamese)


def test_batches_agree_with_one_call(tower: Any, crops: np.ndarray) -> None:
    pre = Preprocessing(scale=1 / 255)
    small = TensorFlowEmbedder(tower, pre, batch_size=4)
    big = TensorFlowEmbedder(tower, pre, batch_size=64)
    assert isinstance(small, Embedder)
    assert (small.input_size, small.embedding_dim) == (TINY_SIZE, TINY_DIM)
    np.testing.assert_allclose(small.embed(crops), big.embed(crops), atol=1e-6)
    expected = np.asarray(tower(crops.astype(np.float32) / 255, training=False))
    np.testing.assert_allclose(big.embed(crops), expected, atol=1e-5)


def test_preprocessing_is_applied(tower: Any, crops: np.ndarray) -> None:
    pre = Preprocessing(scale=2 / 255, offset=(-1.0, -0.5, 0.0))
    expected = np.asarray(
        tower(crops.astype(np.float32) * 2 / 255 + np.array([-1.0, -0.5, 0.0]), training=False)
    )
    np.testing.assert_allclose(TensorFlowEmbedder(tower, pre).embed(crops), expected, atol=1e-5)


def test_single_crop_and_empty_batch(tower: Any, crops: np.ndarray) -> None:
    embedder = TensorFlowEmbedder(tower, Preprocessing())
    assert embedder.embed(crops[0]).shape == (1, TINY_DIM)
    empty = embedder.embed(np.zeros((0, TINY_SIZE, TINY_SIZE, 3), np.uint8))
    assert empty.shape == (0, TINY_DIM)
    assert empty.dtype == np.float32


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((1, 16, 16, 3), np.uint8),
        np.zeros((1, TINY_SIZE, TINY_SIZE, 4), np.uint8),
        np.zeros((1, TINY_SIZE, TINY_SIZE, 3), np.float32),
    ],
)
def test_bad_crops_are_refused(tower: Any, bad: np.ndarray) -> None:
    with pytest.raises(ModelError, match="expected"):
        TensorFlowEmbedder(tower, Preprocessing()).embed(bad)
