"""``facegate verify``: the JSON contract on real LFW faces, threshold logic, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facegate.cli.main import main

# 64 px: big enough for the face pipeline's sharpness gate, small enough to build in a blink.
SIZE = 64
Pair = tuple[Path, Path]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained Siamese model on 64x64 aligned crops (thresholds 0.5 / 0.5)."""
    from facegate.model.bundle import save_model_dir
    from facegate.model.layers import L2Normalize
    from facegate.model.siamese import make_siamese
    from facegate.model.tf_runtime import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(7)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 5, strides=4, activation="relu")(inp)
    x = keras.layers.Dense(16)(keras.layers.Flatten()(x))
    tower = keras.Model(inp, L2Normalize()(x), name="embedding")
    out = tmp_path_factory.mktemp("verify_models") / "tiny"
    save_model_dir(make_siamese(tower), out, name="tiny-verify", arch="compact")
    return out


@pytest.fixture
def same_pair(lfw_images: Path) -> tuple[Path, Path]:
    """Two photos of one person."""
    folder = lfw_images / "George_W_Bush"
    return folder / "George_W_Bush_0001.jpg", folder / "George_W_Bush_0002.jpg"


@pytest.fixture
def other_pair(lfw_images: Path) -> tuple[Path, Path]:
    """Photos of two different people."""
    return (
        lfw_images / "George_W_Bush" / "George_W_Bush_0001.jpg",
        lfw_images / "Tony_Blair" / "Tony_Blair_0001.jpg",
    )


def _verify(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("facegate: error:")]
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("pair", ["same_pair", "other_pair"])
def test_json_contract(
    pair: str, model_dir: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = request.getfixturevalue(pair)
    result = _verify(capsys, ["verify", str(a), str(b), "--model", str(model_dir), "--json"])
    assert set(result) == {"score", "match", "threshold"}
    assert 0.0 <= result["score"] <= 1.0
    assert result["threshold"] == 0.5
    assert result["match"] is (result["score"] >= 0.5)


def test_threshold_option_decides(
    model_dir: Path, same_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["verify", *map(str, same_pair), "--model", str(model_dir), "--json"]
    score = _verify(capsys, argv)["score"]
    for threshold, match in ((score - 0.01, True), (score + 0.01, False)):
        result = _verify(capsys, [*argv, "--threshold", repr(threshold)])
        assert result["threshold"] == pytest.approx(threshold)
        assert result["score"] == pytest.approx(score, abs=1e-6)
        assert result["match"] is match


def test_text_output(
    model_dir: Path, other_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", *map(str, other_pair), "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(("MATCH: score ", "no match: score "))
    assert "(threshold 0.5000)" in out


def test_missing_image_is_one_line(
    model_dir: Path,
    same_pair: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "nobody.jpg"
    assert main(["verify", str(same_pair[0]), str(missing), "--model", str(model_dir)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{missing}: no such image file" in _one_error_line(captured.err)


def test_unreadable_image_names_the_reason(
    model_dir: Path,
    same_pair: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a picture\n")
    argv = ["verify", str(same_pair[0]), str(fake), "--model", str(model_dir), "--json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["score"] is None
    assert result["match"] is False
    assert (result["reason_a"], result["reason_b"]) == (None, "unreadable_image")
    assert f"{fake}: unreadable_image" in _one_error_line(captured.err)


def test_no_face_is_one_line(
    model_dir: Path,
    same_pair: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import cv2
    import numpy as np

    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 128, np.uint8))
    assert main(["verify", str(blank), str(same_pair[1]), "--model", str(model_dir)]) == 1
    assert f"{blank}: no_face" in _one_error_line(capsys.readouterr().err)


def test_corrupt_model_is_one_line(
    model_dir: Path,
    same_pair: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_bytes((model_dir / "manifest.json").read_bytes())
    data = bytearray((model_dir / "model.keras").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bad / "model.keras").write_bytes(bytes(data))
    assert main(["verify", *map(str, same_pair), "--model", str(bad)]) == 1
    assert "sha256" in _one_error_line(capsys.readouterr().err)
