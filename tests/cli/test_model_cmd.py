"""``facegate model info``: the JSON contract for an architecture and a model dir; errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facegate.cli.main import main

TEMPLATE = ((0.34, 0.46), (0.66, 0.46), (0.5, 0.64), (0.5, 0.82))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained Siamese model (32x32 crops, 8-d) saved with known thresholds."""
    from facegate.model.bundle import save_model_dir
    from facegate.model.layers import L2Normalize
    from facegate.model.manifest import Thresholds
    from facegate.model.siamese import make_siamese
    from facegate.model.tf_runtime import import_keras

    keras = import_keras()
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, strides=2)(inp)
    x = keras.layers.Dense(8)(keras.layers.GlobalAveragePooling2D()(x))
    tower = keras.Model(inp, L2Normalize()(x), name="embedding")
    out = tmp_path_factory.mktemp("cli_models") / "tiny"
    save_model_dir(
        make_siamese(tower),
        out,
        name="tiny-cli",
        arch="compact",
        template=TEMPLATE,
        thresholds=Thresholds(detection=0.62, verification=0.7),
    )
    return out


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_info_of_the_seed_architecture(capsys: pytest.CaptureFixture[str]) -> None:
    info = _json(capsys, ["model", "info", "--arch", "seed", "--json"])
    assert info == {
        "arch": "seed",
        "params": 38_964_545,
        "embedding_params": 38_960_448,
        "input_shape": [100, 100, 3],
        "embedding_dim": 4096,
        "sha256": None,
    }


def test_info_of_a_model_dir(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from facegate.model.bundle import sha256_file

    info = _json(capsys, ["model", "info", "--model", str(model_dir), "--json"])
    weights = model_dir / "model.keras"
    assert info["arch"] == "compact"
    assert info["name"] == "tiny-cli"
    assert info["input_shape"] == [32, 32, 3]
    assert info["embedding_dim"] == 8
    # Conv 3*3*3*4+4 = 112, Dense 4*8+8 = 40; head 8+1.
    assert info["embedding_params"] == 152
    assert info["params"] == 161
    assert info["sha256"] == info["embedding_space"] == sha256_file(weights)
    assert info["runtime"] == "tensorflow"  # auto: no LiteRT export
    assert info["size_bytes"] == info["total_bytes"] == weights.stat().st_size
    assert info["thresholds"] == {"detection": 0.62, "verification": 0.7, "pair": 0.62}
    assert (info["variant"], info["variants"]) == ("full", ["full"])


def test_default_model_runs_on_litert_under_auto(capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    from facegate.model.bundle import DEFAULT_MODEL_DIR
    from facegate.model.manifest import Manifest

    info = _json(capsys, ["model", "info", "--json"])
    export = Manifest.read(DEFAULT_MODEL_DIR).tflite["int8"]
    assert (info["runtime"], info["params"]) == ("litert", None)
    assert info["variants"] == ["full", "fast"]
    files = [DEFAULT_MODEL_DIR / "model.keras", DEFAULT_MODEL_DIR / export["file"]]
    assert info["total_bytes"] == sum(f.stat().st_size for f in files)
    # Its galleries are stored under the int8 file's hash and what the runtime does to its
    # output (mirror averaging, unit length), apart from TensorFlow's.
    tagged = hashlib.sha256(f"{export['sha256']}:flip=1,l2=1".encode()).hexdigest()
    assert info["embedding_space"] == tagged != info["sha256"]


def test_text_output(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "info", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "tiny-cli" in out
    assert "detection 0.62" in out


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("facegate: error:")]
    assert len(lines) == 1
    return lines[0]


def test_unknown_architecture_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "info", "--arch", "nope"]) == 1
    assert "unknown architecture 'nope'" in _one_error_line(capsys.readouterr().err)


def test_not_a_model_dir_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "info", "--model", str(tmp_path)]) == 1
    assert "not a model directory" in _one_error_line(capsys.readouterr().err)


def test_tampered_model_is_one_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_bytes((model_dir / "manifest.json").read_bytes())
    (bad / "model.keras").write_bytes((model_dir / "model.keras").read_bytes()[:-10])
    assert main(["model", "info", "--model", str(bad), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "does not match" in _one_error_line(captured.err)


def test_arch_and_model_are_exclusive(model_dir: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["model", "info", "--arch", "seed", "--model", str(model_dir)])
    assert info.value.code == 2
