"""Model variants: one flip-averaging model directory served whole or, as "fast", without the
mirror, on TensorFlow and on LiteRT, each with its own head, thresholds and embedding space."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facegate.errors import ModelError
from facegate.model.bundle import load_model_dir, sha256_file
from facegate.model.manifest import FAST, Manifest, Thresholds, Variant

FAST_THRESHOLDS = Thresholds(detection=0.8, verification=0.6, pair=0.7)
TEMPLATE = ((0.34, 0.46), (0.66, 0.46), (0.5, 0.64), (0.5, 0.82))


@pytest.fixture(scope="module")
def flip_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tower_factory: Any) -> Path:
    """A tiny flip-averaging, unit-length model with a fast variant and a float32 LiteRT
    export (the default model's structure)."""
    from facegate.model.bundle import save_model_dir
    from facegate.model.export import export_tflite
    from facegate.model.resnet import with_flip_average
    from facegate.model.siamese import make_siamese

    siamese = make_siamese(with_flip_average(tiny_tower_factory(), normalize=True))
    rng = np.random.default_rng(7)
    siamese.get_layer("classifier").set_weights(
        [rng.normal(0, 10.0, (16, 1)).astype(np.float32), np.array([0.5], np.float32)]
    )
    kernel = rng.normal(0, 10.0, 16)
    out = tmp_path_factory.mktemp("variants") / "flip"
    save_model_dir(
        siamese,
        out,
        name="tiny-flip",
        arch="compact",
        template=TEMPLATE,
        thresholds=Thresholds(detection=0.9, verification=0.4, pair=0.5),
        variants={
            FAST: Variant(
                flip_average=False,
                head_kernel=tuple(float(v) for v in kernel),
                head_bias=0.25,
                thresholds=FAST_THRESHOLDS,
                metrics={"pairsDevTest": {"accuracy": 0.9}},
            )
        },
    )
    export_tflite(load_model_dir(out), out, "none")
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_manifest_round_trips_variants(flip_dir: Path) -> None:
    manifest = Manifest.read(flip_dir)
    again = Manifest.from_dict(json.loads(manifest.to_json()))
    assert again == manifest
    assert again.variants[FAST].thresholds == FAST_THRESHOLDS
    assert manifest.tflite["none"]["flip_average"] is True
    assert manifest.tflite["none"]["l2_normalize"] is True


def test_fast_runs_the_plain_tower_with_its_own_head(flip_dir: Path, crops: np.ndarray) -> None:
    from facegate.model.resnet import base_tower
    from facegate.model.siamese import embedding_tower

    full = load_model_dir(flip_dir)
    fast = load_model_dir(flip_dir, variant=FAST)
    raw = base_tower(embedding_tower(full.siamese))
    pre = full.manifest.preprocessing
    x = crops.astype(np.float32) * pre.scale + np.asarray(pre.offset, np.float32)
    plain, mirrored = np.asarray(raw(x)), np.asarray(raw(x[:, :, ::-1].copy()))
    # Full: the plain tower on the crop and on its mirror, averaged, then unit length.
    np.testing.assert_allclose(full.embed(crops), _unit((plain + mirrored) / 2), atol=1e-5)
    # Fast: the plain tower on the crop alone, unit length.
    np.testing.assert_allclose(fast.embed(crops), _unit(plain), atol=1e-5)
    assert not np.allclose(fast.embed(crops), full.embed(crops), atol=1e-3)
    assert fast.manifest.thresholds == FAST_THRESHOLDS
    assert fast.manifest.metrics == {"pairsDevTest": {"accuracy": 0.9}}
    assert full.manifest.thresholds.detection == 0.9
    assert fast.manifest.sha256 == full.manifest.sha256  # one set of weights, one version
    np.testing.assert_allclose(fast.head.kernel, Manifest.read(flip_dir).variants[FAST].head_kernel)
    assert fast.head.bias == 0.25
    assert "fast" in fast.label and "fast" not in full.label


@pytest.mark.parametrize("variant", ["full", FAST])
def test_litert_serves_both_variants_from_one_file(
    flip_dir: Path, crops: np.ndarray, variant: str
) -> None:
    reference = load_model_dir(flip_dir, "tensorflow", variant)
    model = load_model_dir(flip_dir, "litert", variant)
    np.testing.assert_allclose(model.embed(crops), reference.embed(crops), atol=1e-5)
    np.testing.assert_allclose(model.head.kernel, reference.head.kernel, atol=1e-6)
    assert model.manifest.thresholds == reference.manifest.thresholds


def test_every_runtime_and_variant_has_its_own_space(flip_dir: Path) -> None:
    spaces = {
        load_model_dir(flip_dir, runtime, variant).space
        for runtime in ("tensorflow", "litert")
        for variant in ("full", FAST)
    }
    assert len(spaces) == 4
    assert load_model_dir(flip_dir).space == Manifest.read(flip_dir).sha256


def test_the_space_follows_what_the_runtime_does_to_the_file(
    flip_dir: Path, tmp_path: Path
) -> None:
    """Same .tflite bytes, told to skip the unit-length scaling: other embeddings, other space."""
    out = tmp_path / "unscaled"
    shutil.copytree(flip_dir, out)
    data = json.loads((out / "manifest.json").read_text())
    data["tflite"]["none"]["l2_normalize"] = False
    (out / "manifest.json").write_text(json.dumps(data))
    for variant in ("full", FAST):
        scaled = load_model_dir(flip_dir, "litert", variant)
        unscaled = load_model_dir(out, "litert", variant)
        assert scaled.tflite_sha256 == unscaled.tflite_sha256
        assert scaled.space != unscaled.space


def test_unknown_or_missing_variant_is_one_line(flip_dir: Path, tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match="unknown model variant 'tiny'"):
        load_model_dir(flip_dir, variant="tiny")
    with pytest.raises(ModelError, match=r'has no fast variant.*model.variant = "full"') as err:
        load_model_dir(tiny_model_dir, variant=FAST)
    assert "\n" not in str(err.value)


def test_an_export_with_the_mirror_inside_serves_full_only(
    flip_dir: Path, tmp_path: Path, crops: np.ndarray
) -> None:
    """Exports made before variants hold the mirror in the graph: full works, fast refuses."""
    from facegate.model.export import _convert
    from facegate.model.siamese import embedding_tower

    out = tmp_path / "old"
    shutil.copytree(flip_dir, out)
    model = load_model_dir(out)
    saved = tmp_path / "saved"
    embedding_tower(model.siamese).export(str(saved), format="tf_saved_model", verbose=False)
    flatbuffer, _ = _convert(saved, "none", model, None)
    (out / "tower.tflite").write_bytes(flatbuffer)
    data = json.loads((out / "manifest.json").read_text())
    entry = data["tflite"]["none"]
    del entry["flip_average"]
    entry["sha256"] = sha256_file(out / "tower.tflite")
    (out / "manifest.json").write_text(json.dumps(data))
    full = load_model_dir(out, "litert")
    np.testing.assert_allclose(full.embed(crops), model.embed(crops), atol=1e-5)
    with pytest.raises(ModelError, match=r"cannot serve the fast variant.*export it again"):
        load_model_dir(out, "litert", FAST)


def test_malformed_variant_is_a_model_error(flip_dir: Path, tmp_path: Path) -> None:
    data: dict[str, Any] = json.loads((flip_dir / "manifest.json").read_text())
    del data["variants"][FAST]["head_kernel"]
    with pytest.raises(ModelError, match="malformed model manifest"):
        Manifest.from_dict(data)
    short = dataclasses.replace(
        Manifest.read(flip_dir),
        variants={
            FAST: dataclasses.replace(Manifest.read(flip_dir).variants[FAST], head_kernel=(1.0,))
        },
    )
    out = tmp_path / "short"
    shutil.copytree(flip_dir, out)
    (out / "manifest.json").write_text(short.to_json())
    with pytest.raises(ModelError, match="head kernel"):
        load_model_dir(out, variant=FAST)


def test_a_nested_tower_without_a_mirror_is_not_unwrapped(tiny_tower_factory: Any) -> None:
    from facegate.model.resnet import base_tower, is_flip_average
    from facegate.model.tf_runtime import import_keras

    keras = import_keras()
    inner = tiny_tower_factory()
    inputs = keras.Input(inner.input_shape[1:])
    outer = keras.Model(inputs, inner(inputs))
    assert not is_flip_average(outer)
    assert base_tower(outer) is outer
