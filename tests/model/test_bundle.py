"""Model directories: save -> load round trip, hash check before deserialising, safe mode."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from facegate.errors import ModelError
from facegate.model.bundle import (
    DEFAULT_MODEL_DIR,
    WEIGHTS_NAME,
    load_model_dir,
    resolve_model_dir,
    save_model_dir,
    sha256_file,
)
from facegate.model.manifest import Manifest, Preprocessing, Thresholds
from facegate.model.tf_runtime import import_keras

# The tiny model of conftest.py (tiny_siamese, tiny_model_dir).
TINY_SIZE = 32
TINY_DIM = 16
TEMPLATE = ((0.34, 0.46), (0.66, 0.46), (0.5, 0.64), (0.5, 0.82))

keras = import_keras()


def _preprocess(crops: np.ndarray, pre: Preprocessing) -> np.ndarray:
    return crops.astype(np.float32) * pre.scale + np.asarray(pre.offset, np.float32)


def test_manifest_describes_the_model(tiny_model_dir: Path) -> None:
    manifest = Manifest.read(tiny_model_dir)
    assert (manifest.name, manifest.arch) == ("tiny", "compact")
    assert (manifest.input_size, manifest.embedding_dim) == (TINY_SIZE, TINY_DIM)
    assert manifest.template == TEMPLATE
    assert manifest.weights_file == WEIGHTS_NAME
    assert manifest.sha256 == sha256_file(tiny_model_dir / WEIGHTS_NAME)
    assert manifest.preprocessing == Preprocessing(scale=1 / 128, offset=(-127.5 / 128,) * 3)
    assert manifest.training == {"data": "none", "weights_dtype": "float32"}
    assert manifest.metrics == {"lfw_devtest": {"accuracy": 0.5}}
    assert sorted(os.listdir(tiny_model_dir)) == ["manifest.json", WEIGHTS_NAME]
    # Nothing left behind by the atomic write.
    assert os.listdir(tiny_model_dir.parent) == ["tiny"]


def test_load_gives_identical_predictions(
    tiny_siamese: Any, tiny_model_dir: Path, crops: np.ndarray
) -> None:
    loaded = load_model_dir(tiny_model_dir)
    x = _preprocess(crops, loaded.manifest.preprocessing)
    expected = tiny_siamese.predict([x, x[::-1]], verbose=0)
    np.testing.assert_array_equal(loaded.siamese.predict([x, x[::-1]], verbose=0), expected)
    embeddings = loaded.embed(crops)
    assert embeddings.shape == (6, TINY_DIM)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(
        loaded.head.pair_scores(embeddings, embeddings[::-1]), expected[:, 0], atol=1e-5
    )
    assert loaded.score(crops[0], crops[5]) == pytest.approx(float(expected[0, 0]), abs=1e-5)


def test_float16_weights_are_smaller_and_load_as_float32(
    tiny_siamese: Any, tiny_model_dir: Path, tmp_path: Path, crops: np.ndarray
) -> None:
    out = tmp_path / "half"
    manifest = save_model_dir(
        tiny_siamese, out, name="half", arch="compact", template=TEMPLATE, weights_dtype="float16"
    )
    assert manifest.training["weights_dtype"] == "float16"
    saved = (tiny_model_dir / WEIGHTS_NAME).stat().st_size - (out / WEIGHTS_NAME).stat().st_size
    # Two bytes saved per parameter (the HDF5 structure around them is the same).
    assert saved >= 2 * tiny_siamese.count_params() * 0.95
    with (
        zipfile.ZipFile(out / WEIGHTS_NAME) as z,
        h5py.File(io.BytesIO(z.read("model.weights.h5"))) as h5,
    ):
        dtypes = set()
        h5.visititems(lambda _, o: dtypes.add(o.dtype) if isinstance(o, h5py.Dataset) else None)
    assert dtypes == {np.dtype(np.float16)}
    loaded = load_model_dir(out)
    assert {w.dtype for w in loaded.siamese.weights} == {"float32"}
    x = _preprocess(crops, loaded.manifest.preprocessing)
    np.testing.assert_allclose(
        loaded.siamese.predict([x, x[::-1]], verbose=0),
        tiny_siamese.predict([x, x[::-1]], verbose=0),
        atol=2e-2,
    )


def test_optimizer_state_is_not_saved(
    tiny_siamese: Any, tiny_tower_factory: Any, tmp_path: Path
) -> None:
    from facegate.model.siamese import compile_siamese, make_siamese

    model = compile_siamese(make_siamese(tiny_tower_factory()))
    x = np.random.default_rng(0).random((4, TINY_SIZE, TINY_SIZE, 3), dtype=np.float32)
    model.fit([x, x[::-1]], np.array([[1], [0], [0], [1]], np.float32), epochs=1, verbose=0)
    save_model_dir(model, tmp_path / "trained", name="t", arch="compact", template=TEMPLATE)
    plain = tmp_path / "plain"
    save_model_dir(tiny_siamese, plain, name="p", arch="compact", template=TEMPLATE)
    trained_size = (tmp_path / "trained" / WEIGHTS_NAME).stat().st_size
    assert trained_size < 1.05 * (plain / WEIGHTS_NAME).stat().st_size


def test_save_replaces_an_existing_dir(tiny_siamese: Any, tmp_path: Path) -> None:
    out = tmp_path / "m"
    save_model_dir(tiny_siamese, out, name="one", arch="compact", template=TEMPLATE)
    save_model_dir(
        tiny_siamese,
        out,
        name="two",
        arch="compact",
        template=TEMPLATE,
        thresholds=Thresholds(detection=0.7, verification=0.6),
    )
    manifest = Manifest.read(out)
    assert (manifest.name, manifest.thresholds.detection) == ("two", 0.7)
    assert os.listdir(tmp_path) == ["m"]


def _copy_dir(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in os.listdir(src):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_flipped_byte_is_refused_before_deserialising(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = _copy_dir(tiny_model_dir, tmp_path / "bad")
    weights = bad / WEIGHTS_NAME
    data = bytearray(weights.read_bytes())
    # Byte 0 is the zip signature: a loader that read the file first would fail on the zip,
    # not on the hash, so the message shows which check ran first.
    data[0] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"model\.keras: sha256 .* does not match") as info:
        load_model_dir(bad)
    assert "\n" not in str(info.value)


def test_truncated_weights_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = _copy_dir(tiny_model_dir, tmp_path / "short")
    weights = bad / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(ModelError, match=r"model\.keras: sha256"):
        load_model_dir(bad)


def test_missing_weights_or_manifest(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = _copy_dir(tiny_model_dir, tmp_path / "gone")
    (bad / WEIGHTS_NAME).unlink()
    with pytest.raises(ModelError, match="cannot read weights"):
        load_model_dir(bad)
    with pytest.raises(ModelError, match="not a model directory"):
        load_model_dir(tmp_path)


def test_weights_file_outside_the_dir_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = _copy_dir(tiny_model_dir, tmp_path / "escape")
    data = json.loads((bad / "manifest.json").read_text())
    data["weights_file"] = "../tiny/model.keras"
    (bad / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="plain file name"):
        load_model_dir(bad)


def test_safe_mode_refuses_a_lambda_layer(tmp_path: Path) -> None:
    # A correctly hashed file whose model holds a Lambda (code from the file) must not load.
    inp = keras.Input((TINY_SIZE, TINY_SIZE, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    x = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x))
    tower = keras.Model(inp, x, name="embedding")
    from facegate.model.siamese import make_siamese

    out = tmp_path / "lambda"
    save_model_dir(make_siamese(tower), out, name="l", arch="compact", template=TEMPLATE)
    with pytest.raises(ModelError, match="cannot load the model"):
        load_model_dir(out)


def test_unknown_runtime_is_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match="unknown runtime 'onnx'"):
        load_model_dir(tiny_model_dir, runtime="onnx")


def test_default_model_dir() -> None:
    if (DEFAULT_MODEL_DIR / "manifest.json").is_file():
        assert resolve_model_dir(None) == DEFAULT_MODEL_DIR
    else:
        with pytest.raises(ModelError, match="no default model is installed"):
            load_model_dir(None)


def test_only_siamese_models_are_saved(tmp_path: Path) -> None:
    inp = keras.Input((4,))
    plain = keras.Model(inp, keras.layers.Dense(1)(inp))
    with pytest.raises(ModelError, match="not a Siamese model"):
        save_model_dir(plain, tmp_path / "m", name="x", arch="compact", template=TEMPLATE)
    assert not (tmp_path / "m").exists()


def test_pair_threshold_round_trips_and_falls_back_to_detection() -> None:
    """``pair`` is the 1:1 threshold; manifests without it use ``detection``."""
    from facegate.model.manifest import Manifest, Thresholds

    base = {
        "name": "m",
        "arch": "compact",
        "input_size": 64,
        "embedding_dim": 8,
        "template": [[0.3, 0.4], [0.7, 0.4]],
        "weights_file": "model.keras",
        "sha256": "0" * 64,
    }
    old = Manifest.from_dict({**base, "thresholds": {"detection": 0.9, "verification": 0.3}})
    assert old.thresholds.pair is None and old.thresholds.one_to_one == 0.9
    new = Manifest.from_dict(
        {**base, "thresholds": {"detection": 0.9, "verification": 0.3, "pair": 0.57}}
    )
    assert new.thresholds == Thresholds(detection=0.9, verification=0.3, pair=0.57)
    assert new.thresholds.one_to_one == 0.57
    assert Manifest.from_dict(json.loads(new.to_json())) == new
