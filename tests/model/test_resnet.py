"""The Keras port of dlib's face ResNet: shapes, dlib's padding rules, registry entry."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.model.architectures import get_architecture
from facegate.model.resnet import (
    DLIB_MEAN_RGB,
    EMBEDDING_DIM,
    FC_LAYER,
    INPUT_SIZE,
    NUM_CONVS,
    PREPROCESSING,
    conv_name,
    make_dlib_resnet,
)


@pytest.fixture(scope="module")
def tower():
    return make_dlib_resnet()


def test_shapes_and_parameter_count(tower) -> None:
    assert tower.input_shape == (None, INPUT_SIZE, INPUT_SIZE, 3)
    assert tower.output_shape == (None, EMBEDDING_DIM)
    trainable = sum(int(np.prod(w.shape)) for w in tower.trainable_weights)
    # 29 convolutions with (folded) biases and the 256x128 fc without bias.
    assert trainable == 5_607_488
    assert NUM_CONVS == 29
    assert tower.get_layer(FC_LAYER).use_bias is False


def test_dlib_spatial_sizes(tower) -> None:
    """dlib pads strided layers by nothing: 150 -> 72 -> 35 -> 17 -> 8 -> 4 -> 2."""
    assert tower.get_layer(conv_name(0)).output.shape[1:] == (72, 72, 32)
    assert tower.get_layer("stem_pool").output.shape[1:] == (35, 35, 32)
    assert tower.get_layer("s1b0_add").output.shape[1:] == (17, 17, 64)
    assert tower.get_layer("s2b0_add").output.shape[1:] == (8, 8, 128)
    # The strided conv gives 3x3 but the pooled shortcut 4x4: dlib zero-pads to the larger.
    assert tower.get_layer(conv_name(21)).output.shape[1:] == (3, 3, 256)
    assert tower.get_layer("s3b0_add").output.shape[1:] == (4, 4, 256)
    assert tower.get_layer(conv_name(27)).output.shape[1:] == (1, 1, 256)
    assert tower.get_layer("s4b0_add").output.shape[1:] == (2, 2, 256)
    for index in range(NUM_CONVS):
        layer = tower.get_layer(conv_name(index))
        assert layer.padding == ("same" if layer.strides == (1, 1) else "valid")


def test_zero_padded_shortcut_is_exact(tower) -> None:
    """The frozen 1x1 channel pad copies the shortcut into the first channels, zeros after."""
    pad = tower.get_layer("s1b0_x_padc")
    (kernel,) = pad.get_weights()
    assert not pad.trainable
    assert kernel.shape == (1, 1, 32, 64)
    np.testing.assert_array_equal(kernel[0, 0], np.eye(32, 64, dtype=np.float32))


def test_preprocessing_is_dlibs_input_layer() -> None:
    pixels = np.array([0.0, 128.0, 255.0])
    for channel, mean in enumerate(DLIB_MEAN_RGB):
        ours = pixels * PREPROCESSING.scale + PREPROCESSING.offset[channel]
        np.testing.assert_allclose(ours, (pixels - mean) / 256.0, atol=1e-7)


def test_registered_as_dlib_resnet() -> None:
    spec = get_architecture("dlib_resnet")
    assert spec.input_size == INPUT_SIZE
    assert spec.preprocessing == PREPROCESSING
    siamese = spec.build_siamese()
    out = siamese.predict([np.zeros((2, 150, 150, 3), np.float32)] * 2, verbose=0)
    assert out.shape == (2, 1)


def test_flip_average_is_the_mean_of_both_mirrors(tower) -> None:
    from facegate.model.resnet import base_tower, normalizes, plain_view, with_flip_average

    wrapped = with_flip_average(tower)
    assert base_tower(wrapped) is tower
    assert base_tower(tower) is tower
    x = np.random.default_rng(0).normal(size=(2, 150, 150, 3)).astype(np.float32)
    expected = (np.asarray(tower(x)) + np.asarray(tower(x[:, :, ::-1].copy()))) / 2
    np.testing.assert_allclose(np.asarray(wrapped(x)), expected, atol=1e-5)
    # Scaled to unit length after the average; its plain view scales the crop's alone.
    unit = with_flip_average(tower, normalize=True)
    assert normalizes(unit) and not normalizes(wrapped)
    norm = np.linalg.norm
    np.testing.assert_allclose(
        np.asarray(unit(x)), expected / norm(expected, axis=1, keepdims=True), atol=1e-5
    )
    plain = np.asarray(tower(x))
    np.testing.assert_allclose(
        np.asarray(plain_view(unit)(x)), plain / norm(plain, axis=1, keepdims=True), atol=1e-5
    )
    assert plain_view(wrapped) is tower


def test_registry_template_is_the_shipped_one() -> None:
    """The architecture's default crop is the one fitted to dlib's chips."""
    from facegate.model.bundle import DEFAULT_MODEL_DIR
    from facegate.model.manifest import Manifest
    from facegate.model.resnet import DLIB_CHIP_TEMPLATE

    assert get_architecture("dlib_resnet_flip").default_template() == DLIB_CHIP_TEMPLATE
    if (DEFAULT_MODEL_DIR / "manifest.json").is_file():
        shipped = Manifest.read(DEFAULT_MODEL_DIR).template
        np.testing.assert_allclose(shipped, DLIB_CHIP_TEMPLATE, atol=0.01)
