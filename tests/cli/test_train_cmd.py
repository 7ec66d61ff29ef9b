"""``facegate train`` through the CLI: identity mode with a tiny compact tower, and bad input."""

import json
import shutil
from pathlib import Path

import pytest

from facegate.cli.main import main

PEOPLE = ["Aaron_Peirsol", "Abdoulaye_Wade", "Adam_Sandler", "Amelie_Mauresmo", "Andre_Agassi"]


@pytest.mark.slow
def test_identity_training_writes_a_model_dir(
    lfw_images: Path, lfw_protocol: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "tree"
    for person in PEOPLE:
        (data / person).mkdir(parents=True)
        for img in sorted((lfw_images / person).iterdir())[:3]:
            shutil.copy(img, data / person / img.name)
    out = tmp_path / "run"
    argv = [
        "train", "--mode", "identity", "--data", str(data), "--out", str(out),
        "--arch", "compact", "--input-size", "32", "--embedding-dim", "16",
        "--epochs", "1", "--batch-size", "4", "--pairs-per-epoch", "8", "--val-pairs", "8",
        "--val-fraction", "0.5", "--exclude-pairs", str(lfw_protocol / "pairsDevTest.txt"),
        "--cache", str(tmp_path / "cache"), "--eager",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"model directory: {out / 'model'}" in printed
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["arch"] == "compact" and manifest["embedding_dim"] == 16
    exclusion = manifest["training"]["exclusion"]
    assert exclusion["excluded_people"] == 963
    assert exclusion["protocol_files"] == ["pairsDevTest.txt"]
    assert len(exclusion["identity_list_sha256"]) == 64
    assert (out / "training_curve.png").stat().st_size > 1000
    assert (out / "checkpoints" / "history.csv").is_file()
    assert any((tmp_path / "cache").rglob("*.npy"))


def test_bad_data_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--mode", "seed", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegate: error:") and "missing anchor/" in err and "\n" not in err


def test_mode_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", "x", "--out", "y"])
    assert info.value.code == 2
