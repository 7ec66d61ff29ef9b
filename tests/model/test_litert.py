"""LiteRT export and runtime: a tiny real model exported to .tflite and run without TensorFlow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facegate.cli.main import main
from facegate.errors import ModelError
from facegate.model.bundle import load_model_dir, resolve_runtime
from facegate.model.export import export_tflite, tflite_name
from facegate.model.litert import LiteRTEmbedder
from facegate.model.manifest import Manifest

# float32 export: the same graph, only op order differs. float16 weights: about 1e-3 relative
# error per weight, on unit-norm 16-d embeddings.
TOLERANCE = {"none": 1e-5, "float16": 5e-3}


@pytest.fixture(scope="module")
def exported_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny model directory with float16 and float32 LiteRT exports."""
    out = tmp_path_factory.mktemp("litert") / "tiny"
    shutil.copytree(tiny_model_dir, out)
    model = load_model_dir(out)
    for quantize in ("none", "float16"):
        export_tflite(model, out, quantize)
    return out


@pytest.mark.parametrize("quantize", ["none", "float16"])
def test_litert_embeddings_match_tensorflow(
    exported_dir: Path, tiny_model_dir: Path, crops: np.ndarray, quantize: str
) -> None:
    manifest = Manifest.read(exported_dir)
    reference = load_model_dir(tiny_model_dir)
    embedder = LiteRTEmbedder(
        exported_dir / manifest.tflite[quantize]["file"],
        manifest.preprocessing,
        manifest.input_size,
        manifest.embedding_dim,
    )
    expected = reference.embed(crops)
    got = embedder.embed(crops)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=TOLERANCE[quantize])
    # Batch sizes change between calls: the resized interpreter must give the same rows.
    np.testing.assert_allclose(embedder.embed(crops[2:3]), got[2:3], atol=1e-6)
    assert embedder.embed(crops[:0]).shape == (0, manifest.embedding_dim)


def test_load_litert_runtime(exported_dir: Path, tiny_model_dir: Path, crops: np.ndarray) -> None:
    model = load_model_dir(exported_dir, runtime="litert")
    reference = load_model_dir(tiny_model_dir)
    assert model.siamese is None
    assert isinstance(model.embedder, LiteRTEmbedder)
    assert model.embedder.path.name == tflite_name("float16")
    np.testing.assert_array_equal(model.head.kernel, reference.head.kernel)
    assert model.head.bias == pytest.approx(reference.head.bias)
    a, b = crops[0], crops[1]
    assert model.score(a, b) == pytest.approx(reference.score(a, b), abs=0.02)


def test_export_keeps_weights_hash(exported_dir: Path, tiny_model_dir: Path) -> None:
    before = Manifest.read(tiny_model_dir)
    after = Manifest.read(exported_dir)
    assert after.sha256 == before.sha256
    assert before.tflite is None
    assert set(after.tflite) == {"none", "float16"}
    assert Manifest.from_dict(json.loads(after.to_json())) == after


def test_tampered_tflite_refused(exported_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tampered"
    shutil.copytree(exported_dir, copy)
    path = copy / tflite_name("float16")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_model_dir(copy, runtime="litert")


def test_no_export_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match="no LiteRT export: run facegate model export"):
        load_model_dir(tiny_model_dir, runtime="litert")


def test_litert_module_does_not_import_tensorflow() -> None:
    code = "import facegate.model.litert, sys; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_litert_load_does_not_import_tensorflow(exported_dir: Path) -> None:
    code = (
        "import sys; from facegate.model.bundle import load_model_dir; "
        f"m = load_model_dir({str(exported_dir)!r}, runtime='litert'); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_export_into_copy(tiny_model_dir: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "exported"
    code = main(
        ["model", "export", "--model", str(tiny_model_dir), "--format", "tflite", "--out", str(out)]
    )
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out / tflite_name("float16"))
    assert Manifest.read(tiny_model_dir).tflite is None
    assert load_model_dir(out, runtime="litert").embedder.embedding_dim == 16


def test_cli_export_refuses_default_without_out(capsys: Any) -> None:
    code = main(["model", "export", "--format", "tflite", "--quantize", "int8"])
    assert code != 0
    assert "--out" in capsys.readouterr().err


def test_cli_export_int8_calibrated_on_faces(
    tiny_model_dir: Path, lfw_images: Path, tmp_path: Path
) -> None:
    calib = tmp_path / "calib"
    calib.mkdir()
    for image in sorted((lfw_images / "Colin_Powell").glob("*.jpg"))[:4]:
        shutil.copy(image, calib / image.name)
    out = tmp_path / "int8"
    argv = ["model", "export", "--model", str(tiny_model_dir), "--format", "tflite"]
    argv += ["--quantize", "int8", "--calibrate", str(calib), "--out", str(out)]
    assert main(argv) == 0
    assert Manifest.read(out).tflite["int8"]["mode"] == "int8-calibrated"
    model = load_model_dir(out, runtime="litert")
    reference = load_model_dir(tiny_model_dir)
    crops = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3), np.uint8)
    got = model.embed(crops)
    # int8 activations: the rows stay close in direction to the float ones.
    cosine = np.sum(got * reference.embed(crops), axis=1) / np.linalg.norm(got, axis=1)
    assert np.all(cosine > 0.9)


def test_export_int8_dynamic_range(tiny_model_dir: Path, tmp_path: Path, crops: np.ndarray) -> None:
    out = tmp_path / "dyn"
    shutil.copytree(tiny_model_dir, out)
    export_tflite(load_model_dir(out), out, "int8")
    assert Manifest.read(out).tflite["int8"]["mode"] == "int8-dynamic-range"
    got = load_model_dir(out, runtime="litert").embed(crops)
    np.testing.assert_allclose(got, load_model_dir(tiny_model_dir).embed(crops), atol=0.05)


# An interpreter where TensorFlow and Keras are not installed: the import system finds neither.
_NO_TF = (
    "import importlib.abc, sys\n"
    "class NoTF(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
    "            raise ModuleNotFoundError(name)\n"
    "sys.meta_path.insert(0, NoTF())\n"
)


def test_auto_runtime_prefers_a_litert_export(exported_dir: Path, tiny_model_dir: Path) -> None:
    with_export, without = Manifest.read(exported_dir), Manifest.read(tiny_model_dir)
    assert resolve_runtime("auto", with_export) == "litert"
    assert resolve_runtime("auto", without) == "tensorflow"
    assert resolve_runtime("litert", without) == "litert"  # explicit: checked at load
    assert resolve_runtime("tensorflow", with_export) == "tensorflow"
    assert load_model_dir(exported_dir, "auto").runtime == "litert"
    assert load_model_dir(tiny_model_dir, "auto").runtime == "tensorflow"


def test_embedding_space_names_the_file_the_runtime_loaded(
    exported_dir: Path, tiny_model_dir: Path
) -> None:
    manifest = Manifest.read(exported_dir)
    on_tf = load_model_dir(exported_dir, "tensorflow")
    on_litert = load_model_dir(exported_dir, "litert")
    assert on_tf.space == manifest.sha256 == load_model_dir(tiny_model_dir).space
    assert on_litert.space == manifest.tflite["float16"]["sha256"] != on_tf.space
    assert len(on_litert.space) == 64 and on_litert.manifest.sha256 == manifest.sha256
    assert on_litert.label == f"{manifest.sha256[:12]} (litert float16 {on_litert.space[:12]})"


def test_auto_runtime_without_tensorflow_is_litert(
    exported_dir: Path, tiny_model_dir: Path
) -> None:
    code = _NO_TF + (
        "from facegate.errors import ModelError\n"
        "from facegate.model.bundle import load_model_dir\n"
        f"m = load_model_dir({str(exported_dir)!r}, runtime='auto')\n"
        "assert m.siamese is None and 'tensorflow' not in sys.modules\n"
        "try:\n"
        f"    load_model_dir({str(tiny_model_dir)!r}, runtime='auto')\n"
        "except ModelError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert done.stdout.strip().splitlines() == [
        "model tiny has no LiteRT export and TensorFlow is not installed: export it where "
        "TensorFlow is installed (facegate model export --format tflite) or install TensorFlow"
    ]


def test_missing_tensorflow_is_one_line_naming_the_extra(tiny_model_dir: Path) -> None:
    code = _NO_TF + (
        "from facegate.cli.main import main\n"
        f"sys.exit(main(['model', 'export', '--model', {str(tiny_model_dir)!r}, "
        "'--format', 'tflite']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "facegate: error: model export needs TensorFlow, which is not installed: "
        "pip install 'facegate[tensorflow]'"
    ]
