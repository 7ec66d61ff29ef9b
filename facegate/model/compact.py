"""The product's compact embedding tower: a MobileFaceNet-like CNN, ~1 M parameters.

Aligned (N, S, S, 3) float32 crop -> input batch norm -> strided 3x3 conv -> depthwise conv ->
inverted-residual bottlenecks (depthwise-separable, linear projections, residual adds) ->
1x1 conv to 512 -> global depthwise conv (a learned, position-aware pooling) -> Dense + BN ->
``L2Normalize``: a unit-norm (N, D) float32 embedding, D <= 512.
"""

from __future__ import annotations

from typing import Any

from facegate.errors import ModelError
from facegate.model.layers import L2Normalize
from facegate.model.siamese import EMBEDDING_LAYER
from facegate.model.tf_runtime import import_keras

keras = import_keras()
layers = keras.layers

COMPACT_INPUT_SIZE = 112
COMPACT_EMBEDDING_DIM = 128
MAX_EMBEDDING_DIM = 512

# (expansion, output channels, repeats, first stride) of each bottleneck stage (MobileFaceNet).
_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)


def _act(x: Any) -> Any:
    # One PReLU slope per channel (shared over space): MobileFaceNet's choice, few parameters.
    return layers.PReLU(shared_axes=[1, 2])(x)


def _conv_bn(x: Any, filters: int, kernel: int, strides: int = 1, act: bool = True) -> Any:
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return _act(x) if act else x


def _depthwise_bn(x: Any, kernel: int, strides: int = 1, act: bool = True) -> Any:
    x = layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return _act(x) if act else x


def _bottleneck(x: Any, expansion: int, filters: int, strides: int) -> Any:
    """Inverted residual: 1x1 expand, 3x3 depthwise, linear 1x1 project, add when shapes match."""
    channels = x.shape[-1]
    y = _conv_bn(x, channels * expansion, 1)
    y = _depthwise_bn(y, 3, strides)
    y = _conv_bn(y, filters, 1, act=False)
    if strides == 1 and channels == filters:
        y = layers.Add()([x, y])
    return y


def make_compact_embedding(
    input_size: int = COMPACT_INPUT_SIZE, embedding_dim: int = COMPACT_EMBEDDING_DIM
) -> Any:
    """Build the tower: (N, S, S, 3) float32 -> (N, embedding_dim) float32 with unit L2 norm.

    ``input_size`` must be a multiple of 16 and at least 32; ``embedding_dim`` in [1, 512].
    """
    if input_size < 32 or input_size % 16:
        raise ModelError(f"compact tower: input_size {input_size} must be a multiple of 16, >= 32")
    if not 1 <= embedding_dim <= MAX_EMBEDDING_DIM:
        raise ModelError(f"compact tower: embedding_dim {embedding_dim} not in [1, 512]")
    inp = keras.Input(shape=(input_size, input_size, 3), name="input_image")
    # Normalising the raw crop in the graph makes the tower indifferent to the pixel scale.
    x = layers.BatchNormalization(name="input_norm")(inp)
    x = _conv_bn(x, 64, 3, strides=2)
    x = _depthwise_bn(x, 3)
    for expansion, filters, repeats, stride in _STAGES:
        for i in range(repeats):
            x = _bottleneck(x, expansion, filters, stride if i == 0 else 1)
    x = _conv_bn(x, 512, 1)
    # Global depthwise conv over the whole final map: a pooling that learns where features are.
    x = layers.DepthwiseConv2D(tuple(x.shape[1:3]), padding="valid", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(embedding_dim, use_bias=False)(x)
    x = layers.BatchNormalization(name="embedding_norm")(x)
    out = L2Normalize(name="l2_normalize")(x)
    return keras.Model(inputs=inp, outputs=out, name=EMBEDDING_LAYER)
