"""dlib XML -> Keras conversion, and the converted tower against dlib itself.

The comparison with dlib needs the developer tools ``dlib-bin`` and ``face_recognition_models``
(pip, about 130 MB, no compiler) and LFW; it skips with the reason where they are absent.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from facegate.errors import DataError, ModelError
from facegate.model.resnet import FC_LAYER, NUM_CONVS, conv_name, make_dlib_resnet
from facegate.training.dlib_convert import (
    DlibConv,
    DlibNet,
    convert_dlib_xml,
    load_dlib_weights,
    max_abs_diff,
    parse_dlib_xml,
)

# The shape of dlib's net_to_xml output (loss first, input last), with tiny layers.
TINY_XML = """<net>
<layer idx='0' type='loss'>
<loss_metric margin='0.0399999991' distance_threshold='0.600000024'/></layer>
<layer idx='1' type='comp'>
<fc_no_bias num_outputs='2' learning_rate_mult='1' weight_decay_mult='1'>
1 2
3 4
</fc_no_bias>
</layer>
<layer idx='2' type='comp'>
<avg_pool nr='0' nc='0' stride_y='1' stride_x='1' padding_y='0' padding_x='0'/>
</layer>
<layer idx='3' type='tag' id='1'/>
<layer idx='4' type='comp'>
<affine_con>
 2
 3
 0.5
 -1
</affine_con>
</layer>
<layer idx='5' type='comp'>
<con num_filters='2' nr='1' nc='1' stride_y='2' stride_x='2' padding_y='0' padding_x='0' \
learning_rate_mult='1' weight_decay_mult='1' bias_learning_rate_mult='1' \
bias_weight_decay_mult='0' use_bias='true'>
 0.1
 0.2
 0.3
 0.4
 0.5
 0.6
 7
 8
</con></layer>
<layer idx='6' type='input'>
<input_rgb_image_sized r='122.781998' g='117.000999' b='104.297997' nr='150' nc='150'/></layer>
</net>
""".replace("\\\n", "")


def test_parse_reads_layers_input_to_output(tmp_path: Path) -> None:
    path = tmp_path / "tiny.xml"
    path.write_text(TINY_XML, encoding="ascii")
    net = parse_dlib_xml(path)
    assert net.input_size == 150
    assert net.input_mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-5)
    (conv,) = net.convs
    assert conv.filters.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(conv.filters[:, :, 0, 0], [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    np.testing.assert_allclose(conv.bias, [7, 8])
    np.testing.assert_allclose(conv.gamma, [2, 3])
    np.testing.assert_allclose(conv.beta, [0.5, -1])
    assert (conv.stride, conv.padding) == (2, 0)
    np.testing.assert_allclose(net.fc, [[1, 2], [3, 4]])


def test_parse_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text("<net>\n<layer idx='0' type='comp'>\n<relu/>\n</layer>\n</net>\n")
    with pytest.raises(DataError):
        parse_dlib_xml(path)
    with pytest.raises(DataError):
        parse_dlib_xml(tmp_path / "missing.xml")


def test_folding_equals_conv_then_affine() -> None:
    """affine(con(x)) computed dlib's way ([out, in, r, c] correlation) == folded Keras conv."""
    rng = np.random.default_rng(0)
    conv = DlibConv(
        filters=rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
        bias=rng.normal(size=4).astype(np.float32),
        gamma=rng.normal(size=4).astype(np.float32),
        beta=rng.normal(size=4).astype(np.float32),
        stride=1,
        padding=0,
    )
    x = rng.normal(size=(5, 5, 3)).astype(np.float32)
    kernel, bias = conv.folded()
    for r in range(3):
        for c in range(3):
            patch = x[r : r + 3, c : c + 3]  # (rows, cols, in)
            dlib = np.einsum("oirc,rci->o", conv.filters, patch) + conv.bias
            dlib = conv.gamma * dlib + conv.beta
            ours = np.einsum("rcio,rci->o", kernel, patch) + bias
            np.testing.assert_allclose(ours, dlib, rtol=1e-5, atol=1e-5)


def _random_net(tower, rng: np.random.Generator) -> DlibNet:
    convs = []
    for index in range(NUM_CONVS):
        layer = tower.get_layer(conv_name(index))
        rows, cols, inputs, out = layer.kernel.shape
        stride = layer.strides[0]
        convs.append(
            DlibConv(
                filters=rng.normal(size=(out, inputs, rows, cols)).astype(np.float32),
                bias=rng.normal(size=out).astype(np.float32),
                gamma=np.ones(out, np.float32),
                beta=np.zeros(out, np.float32),
                stride=stride,
                padding=rows // 2 if stride == 1 else 0,
            )
        )
    fc = rng.normal(size=(256, 128)).astype(np.float32)
    return DlibNet(tuple(convs), fc, (122.782, 117.001, 104.298), 150)


def test_load_transposes_dlib_filters() -> None:
    tower = make_dlib_resnet()
    net = _random_net(tower, np.random.default_rng(1))
    load_dlib_weights(tower, net)
    kernel, bias = tower.get_layer(conv_name(5)).get_weights()
    np.testing.assert_array_equal(kernel, net.convs[5].filters.transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(bias, net.convs[5].bias)
    np.testing.assert_array_equal(tower.get_layer(FC_LAYER).get_weights()[0], net.fc)


def test_load_refuses_a_different_network() -> None:
    tower = make_dlib_resnet()
    net = _random_net(tower, np.random.default_rng(2))
    with pytest.raises(ModelError, match="convolutions"):
        load_dlib_weights(tower, DlibNet(net.convs[:-1], net.fc, net.input_mean_rgb, 150))
    shifted = list(net.convs)
    shifted[3] = DlibConv(**{**shifted[3].__dict__, "stride": 2, "padding": 0})
    with pytest.raises(ModelError, match="conv_03"):
        load_dlib_weights(tower, DlibNet(tuple(shifted), net.fc, net.input_mean_rgb, 150))


# --- against dlib itself -----------------------------------------------------------------------


def _dlib_chips(lfw_images: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """dlib's own chips and descriptors of ``count`` LFW images (or skip without dlib)."""
    missing = [
        m for m in ("dlib", "face_recognition_models") if importlib.util.find_spec(m) is None
    ]
    if missing:
        if os.environ.get("FACEGATE_REQUIRE_TEST_DATA") == "1":
            pytest.fail(f"{missing} must be installed here (they are in the test extras)")
        pytest.skip(
            f"{' and '.join(missing)} not installed (pip install dlib-bin face_recognition_models)"
        )
    from facegate.face.image_io import load_image
    from facegate.training.dlib_convert import DlibReference

    reference = DlibReference.load()
    chips = []
    for path in sorted(lfw_images.glob("*/*_0001.jpg"))[::400]:
        rgb = load_image(path)
        shape = reference.shape(rgb)
        if shape is not None:
            chips.append(reference.chip(rgb, shape))
        if len(chips) == count:
            break
    return np.stack(chips), reference.descriptors(chips)


def test_shipped_tower_reproduces_dlib(lfw_images: Path) -> None:
    """The default model's (float16-stored) tower gives dlib's descriptors within 1e-3."""
    from facegate.model.bundle import DEFAULT_MODEL_DIR, load_model_dir
    from facegate.model.siamese import embedding_tower

    if not (DEFAULT_MODEL_DIR / "manifest.json").is_file():
        pytest.skip("no default model in the package")
    chips, reference = _dlib_chips(lfw_images, 8)
    from facegate.model.resnet import base_tower

    tower = base_tower(embedding_tower(load_model_dir(None).siamese))
    assert max_abs_diff(tower, chips, reference) < 1e-3


def test_xml_conversion_reproduces_dlib(lfw_images: Path) -> None:
    """A fresh conversion (float32) matches dlib to 1e-5 (set FACEGATE_DLIB_XML to run it)."""
    xml = os.environ.get("FACEGATE_DLIB_XML")
    if not xml:
        pytest.skip("FACEGATE_DLIB_XML is not set (tools/dlib_export writes the XML dump)")
    chips, reference = _dlib_chips(lfw_images, 8)
    assert max_abs_diff(convert_dlib_xml(Path(xml)), chips, reference) < 1e-5
