"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in Keras 3.

The network of dlib's ``dnn_face_recognition_ex.cpp``: a 7x7/2 convolution and a 3x3/2 max
pool, then 14 residual blocks of two 3x3 convolutions (32, 64, 128, 256, 256 filters; four of
them downsampling), a global average pool and a 128-way fully connected layer without bias.
29 convolutions in all, 150x150 RGB input, a 128-d descriptor that is *not* L2-normalised
(dlib compares descriptors by Euclidean distance, 0.6 meaning "same person").

Faithful to dlib's arithmetic where Keras differs by default:

- dlib's ``con`` pads ``size // 2`` only at stride 1; a strided convolution or pool pads
  nothing, so those layers use ``padding="valid"`` (not Keras' asymmetric ``"same"``).
- dlib's ``affine`` layers (frozen batch norm, ``gamma * x + beta``) follow every convolution;
  the converter folds them into the convolution's kernel and bias, so there is no layer here.
- dlib's ``add_prev`` adds tensors of different shapes by zero-padding both to the larger one
  (bottom/right rows and columns, trailing channels): the downsampling shortcut is a 2x2/2
  average pool of the block's input, which at 8x8 -> 4x4 and 4x4 -> 2x2 is one cell larger
  than the strided convolution's output (3x3, 1x1); zero padding and a frozen 1x1 identity
  projection reproduce that with stock layers (safe-mode loading needs no custom layer).
- dlib's input layer maps a uint8 RGB pixel ``p`` to ``(p - mean) / 256`` with the channel
  means below: ``PREPROCESSING`` in the manifest's ``x * scale + offset`` form.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from facegate.model.architectures import register_architecture
from facegate.model.manifest import Preprocessing

logger = logging.getLogger(__name__)

INPUT_SIZE = 150
EMBEDDING_DIM = 128
# dlib's input_rgb_image defaults, as stored in the model file (r, g, b).
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
PREPROCESSING = Preprocessing(scale=1.0 / 256.0, offset=tuple(-m / 256.0 for m in DLIB_MEAN_RGB))
# Where facegate's BlazeFace keypoints (right eye, left eye, nose tip, mouth centre) fall in
# dlib's 150x150 chips (get_face_chip_details, padding 0.25), in [0, 1]: the median over 391
# LFW training faces (``facegate convert-dlib`` refits it and stores it in the manifest).
DLIB_CHIP_TEMPLATE: tuple[tuple[float, float], ...] = (
    (0.3128, 0.3101),
    (0.6833, 0.3144),
    (0.4957, 0.5404),
    (0.4958, 0.7214),
)
# Blocks per stage, input side to output side: (filters, downsampling first?, blocks).
STAGES: tuple[tuple[int, bool, int], ...] = (
    (32, False, 3),
    (64, True, 4),
    (128, True, 3),
    (256, True, 3),
    (256, True, 1),
)
NUM_CONVS = 1 + 2 * sum(blocks for _, _, blocks in STAGES)
FC_LAYER = "fc"
FLIP_AVERAGE_LAYER = "flip_average"
UNIT_NORM_LAYER = "unit_norm"


def conv_name(index: int) -> str:
    """Keras name of the ``index``-th convolution (0-based, input to output order)."""
    return f"conv_{index:02d}"


class _Builder:
    """Builds the graph from stock Keras layers, naming convolutions in input-to-output order
    (the converter relies on it)."""

    def __init__(self) -> None:
        from facegate.model.tf_runtime import import_keras

        self.keras = import_keras()
        self.count = 0

    def conv(self, filters: int, kernel: int, stride: int) -> Any:
        """A Conv2D with dlib's padding: ``kernel // 2`` at stride 1 ("same"), none if strided."""
        padding = "same" if stride == 1 else "valid"
        layer = self.keras.layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, name=conv_name(self.count)
        )
        self.count += 1
        return layer

    def pad_to(self, x: Any, like: Any, name: str) -> Any:
        """Zero-pad ``x`` after its last rows, columns and channels up to ``like``'s shape
        (dimensions where ``x`` is already larger stay as they are)."""
        layers = self.keras.layers
        (h, w, c) = x.shape[1:]
        th, tw, tc = (max(a, b) for a, b in zip(x.shape[1:], like.shape[1:], strict=True))
        if (th, tw) != (h, w):
            x = layers.ZeroPadding2D(((0, th - h), (0, tw - w)), name=f"{name}_padhw")(x)
        if tc != c:
            # A frozen 1x1 identity projection: exact (x * 1 + 0) and made of stock layers
            # only, so the saved model loads in safe mode with no custom layer registered.
            eye = np.eye(c, tc, dtype=np.float32)[None, None]
            pad = layers.Conv2D(tc, 1, use_bias=False, trainable=False, name=f"{name}_padc")
            x = pad(x)
            pad.set_weights([eye])
        return x

    def block(self, x: Any, filters: int, downsample: bool, name: str) -> Any:
        """One residual block: conv(s) -> relu -> conv, added to the (pooled) input, relu."""
        layers = self.keras.layers
        y = self.conv(filters, 3, 2 if downsample else 1)(x)
        y = layers.ReLU(name=f"{name}_relu1")(y)
        y = self.conv(filters, 3, 1)(y)
        shortcut = x
        if downsample:
            shortcut = layers.AveragePooling2D(2, 2, padding="valid", name=f"{name}_pool")(x)
            # dlib's add_prev zero-pads both operands to the larger shape: the pooled input
            # has more rows/columns (4 vs 3, 2 vs 1), the block output more channels.
            y = self.pad_to(y, shortcut, f"{name}_y")
            shortcut = self.pad_to(shortcut, y, f"{name}_x")
        y = layers.Add(name=f"{name}_add")([y, shortcut])
        return layers.ReLU(name=f"{name}_relu2")(y)


def make_dlib_resnet(input_size: int = INPUT_SIZE, name: str = "embedding") -> Any:
    """The tower: (N, S, S, 3) float32 preprocessed by ``PREPROCESSING`` -> (N, 128) float32.

    dlib's weights are for S = 150; other sizes build (global pooling) but are untested.
    """
    build = _Builder()
    layers = build.keras.layers
    inputs = build.keras.Input(shape=(input_size, input_size, 3), name="input_image")
    x = build.conv(32, 7, 2)(inputs)
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.MaxPooling2D(3, 2, padding="valid", name="stem_pool")(x)
    for stage, (filters, downsample, blocks) in enumerate(STAGES):
        for block in range(blocks):
            x = build.block(x, filters, downsample and block == 0, f"s{stage}b{block}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(EMBEDDING_DIM, use_bias=False, name=FC_LAYER)(x)
    if build.count != NUM_CONVS:
        raise AssertionError(f"built {build.count} convolutions, expected {NUM_CONVS}")
    return build.keras.Model(inputs=inputs, outputs=outputs, name=name)


register_architecture(
    "dlib_resnet",
    make_dlib_resnet,
    input_size=INPUT_SIZE,
    preprocessing=PREPROCESSING,
    template=DLIB_CHIP_TEMPLATE,
    description="dlib's face ResNet (29 conv, 150x150, 128-d, Euclidean), 5.6 M parameters",
)


def with_flip_average(tower: Any, normalize: bool = False, name: str = "embedding") -> Any:
    """Wrap ``tower`` so it returns the mean embedding of each crop and its mirror image,
    scaled to unit length when ``normalize``.

    Test-time flip averaging: on held-out LFW people it raised TAR at FAR 1e-3 from 0.899 to
    0.925 for twice the compute. The mirror is a fixed anti-identity matrix applied along
    the width axis (stock Permute + frozen Dense: exact, and loadable in safe mode). Unit
    length suits the L1 head: dlib's network was trained for Euclidean distance, and on
    held-out people the head on unit-length descriptors reached AUC 0.9989 against 0.9983.
    """
    from facegate.model.layers import L2Normalize
    from facegate.model.tf_runtime import import_keras

    keras = import_keras()
    layers = keras.layers
    size = int(tower.input_shape[2])
    inputs = keras.Input(shape=tuple(tower.input_shape[1:]), name="input_image")
    x = layers.Permute((1, 3, 2), name="to_width_last")(inputs)
    mirror = layers.Dense(size, use_bias=False, trainable=False, name="mirror")
    x = mirror(x)
    mirror.set_weights([np.eye(size, dtype=np.float32)[::-1].copy()])
    flipped = layers.Permute((1, 3, 2), name="to_channels_last")(x)
    outputs = layers.Average(name=FLIP_AVERAGE_LAYER)([tower(inputs), tower(flipped)])
    if normalize:
        outputs = L2Normalize(name=UNIT_NORM_LAYER)(outputs)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def is_flip_average(tower: Any) -> bool:
    """True when ``tower`` is a ``with_flip_average`` wrapper."""
    return any(layer.name == FLIP_AVERAGE_LAYER for layer in tower.layers)


def normalizes(tower: Any) -> bool:
    """True when ``tower`` is a ``with_flip_average`` wrapper that scales to unit length."""
    return is_flip_average(tower) and any(layer.name == UNIT_NORM_LAYER for layer in tower.layers)


def plain_view(tower: Any) -> Any:
    """What a flip-averaging ``tower`` computes without the mirror (its fast variant): the
    plain tower inside, scaled to unit length when the wrapper does; else ``tower``."""
    from facegate.model.layers import L2Normalize
    from facegate.model.tf_runtime import import_keras

    base = base_tower(tower)
    if not normalizes(tower):
        return base
    keras = import_keras()
    inputs = keras.Input(shape=tuple(base.input_shape[1:]), name="input_image")
    outputs = L2Normalize(name=UNIT_NORM_LAYER)(base(inputs))
    return keras.Model(inputs=inputs, outputs=outputs, name=f"{tower.name}_plain")


def base_tower(tower: Any) -> Any:
    """The plain tower inside a ``with_flip_average`` wrapper (or ``tower`` itself)."""
    from facegate.model.tf_runtime import import_keras

    if not is_flip_average(tower):
        return tower
    keras = import_keras()
    (nested,) = [layer for layer in tower.layers if isinstance(layer, keras.Model)]
    return nested


def make_dlib_resnet_flip(input_size: int = INPUT_SIZE) -> Any:
    """``make_dlib_resnet`` with test-time flip averaging: (N, S, S, 3) -> (N, 128) float32."""
    return with_flip_average(make_dlib_resnet(input_size, name="dlib_resnet"))


def make_dlib_resnet_flip_l2(input_size: int = INPUT_SIZE) -> Any:
    """``make_dlib_resnet_flip`` scaled to unit length: (N, S, S, 3) -> (N, 128) float32."""
    return with_flip_average(make_dlib_resnet(input_size, name="dlib_resnet"), normalize=True)


register_architecture(
    "dlib_resnet_flip",
    make_dlib_resnet_flip,
    input_size=INPUT_SIZE,
    preprocessing=PREPROCESSING,
    template=DLIB_CHIP_TEMPLATE,
    description="dlib_resnet averaging each face with its mirror image (2x compute)",
)


register_architecture(
    "dlib_resnet_flip_l2",
    make_dlib_resnet_flip_l2,
    input_size=INPUT_SIZE,
    preprocessing=PREPROCESSING,
    template=DLIB_CHIP_TEMPLATE,
    description="dlib_resnet_flip with unit-length embeddings (the default model's tower)",
)
