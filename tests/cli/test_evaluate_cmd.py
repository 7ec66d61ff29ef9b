"""``facegate evaluate --json`` on a small LFW pairs file and on a tree, with a tiny model."""

import json
import shutil
from pathlib import Path

import pytest

from facegate.cli.main import main
from facegate.config import FaceConfig
from facegate.training import lfw, train

TRAIN_PEOPLE = ["Aaron_Peirsol", "Abdoulaye_Wade", "Adam_Sandler", "Abel_Pacheco"]
REQUIRED = {
    "pairs", "accuracy", "best_accuracy", "auc", "eer", "tar_at_far_1e2", "tar_at_far_1e3",
    "ms_per_image", "no_face", "threshold", "door", "model",
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_model(lfw_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compact tower (32 px, 16-d) trained for one epoch on four LFW people."""
    root = tmp_path_factory.mktemp("tiny")
    for person in TRAIN_PEOPLE:
        (root / "tree" / person).mkdir(parents=True)
        for img in sorted((lfw_images / person).iterdir())[:3]:
            shutil.copy(img, root / "tree" / person / img.name)
    options = train.TrainOptions(
        mode="identity", data=root / "tree", out=root / "run", arch="compact", epochs=1,
        batch_size=4, pairs_per_epoch=8, val_pairs=8, val_fraction=0.5, input_size=32,
        embedding_dim=16, verbose=0, run_eagerly=True,
    )  # fmt: skip
    return train.train(options, FaceConfig()).model_dir


def _small_pairs(lfw_protocol: Path, path: Path) -> Path:
    """The first 10 genuine and 10 impostor pairs of pairsDevTest.txt as a protocol file."""
    lines = (lfw_protocol / "pairsDevTest.txt").read_text().splitlines()
    path.write_text("\n".join(["10", *lines[1:11], *lines[501:511]]) + "\n")
    return path


@pytest.mark.slow
def test_evaluate_json_on_lfw_pairs(
    tiny_model: Path,
    lfw_images: Path,
    lfw_protocol: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pairs = _small_pairs(lfw_protocol, tmp_path / "pairs20.txt")
    roc = tmp_path / "roc.png"
    argv = ["evaluate", "--lfw", str(lfw_images), "--pairs", str(pairs), "--model",
            str(tiny_model), "--json", "--roc", str(roc)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out.strip()
    assert "\n" not in out  # one JSON object
    report = json.loads(out)
    assert set(report) >= REQUIRED
    assert report["pairs"] == 20 and report["genuine_pairs"] == 10
    for key in ("accuracy", "best_accuracy", "auc", "eer", "tar_at_far_1e2", "tar_at_far_1e3"):
        assert 0.0 <= report[key] <= 1.0, key
    unique_images = len(
        {p for pair in lfw.parse_pairs(pairs).pairs for p in pair.paths(lfw_images)}
    )
    assert report["images"] == unique_images
    assert 0 <= report["no_face"] <= unique_images
    assert 0.0 < report["ms_per_image"] < 10_000
    assert (
        report["model"]["sha256"]
        == json.loads((tiny_model / "manifest.json").read_text())["sha256"]
    )
    # A trained model has one threshold: it is both the 1:1 and the door's.
    detection = json.loads((tiny_model / "manifest.json").read_text())["thresholds"]["detection"]
    assert report["threshold"] == report["door"]["threshold"] == detection
    assert report["door"]["accuracy"] == report["accuracy"]
    assert roc.stat().st_size > 1000

    assert main(argv[:-3]) == 0  # the readable table
    table = capsys.readouterr().out
    assert "best accuracy" in table and "TAR @ FAR 1e-2" in table


@pytest.mark.slow
def test_evaluate_dataset_has_five_times_impostors(
    tiny_model: Path, lfw_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for person, n in (("Abdullah_Gul", 3), ("Alvaro_Uribe", 2), ("Aaron_Eckhart", 1)):
        (tmp_path / "tree" / person).mkdir(parents=True)
        for img in sorted((lfw_images / person).iterdir())[:n]:
            shutil.copy(img, tmp_path / "tree" / person / img.name)
    argv = ["evaluate", "--dataset", str(tmp_path / "tree"), "--model", str(tiny_model), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    # 3 + 1 genuine pairs; 5x as many impostors wanted (20), but only 11 exist: all of them.
    assert report["genuine_pairs"] == 4 and report["impostor_pairs"] == 11
    assert report["images"] == 6


@pytest.mark.slow
def test_door_trials_verify_galleries_of_the_pairs_people(
    tiny_model: Path, lfw_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--door-trials embeds every image of the pairs file's people and simulates the door."""
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "2\nAl_Sharpton\t1\t2\nAlbert_Costa\t1\t2\n"
        "Amelia_Vega\t1\tAna_Guevara\t1\nAngela_Bassett\t1\tArminio_Fraga\t1\n"
    )
    argv = ["evaluate", "--lfw", str(lfw_images), "--pairs", str(pairs), "--model",
            str(tiny_model), "--door-trials", "40", "--json"]  # fmt: skip
    assert main(argv) == 0
    trials = json.loads(capsys.readouterr().out)["door_trials"]
    assert trials["people"] == 6 and trials["images"] == 7 + 6 + 7 + 7 + 6 + 6
    assert trials["trials"] == 40 and trials["gallery_sizes"] == [3, 4, 5]
    thresholds = json.loads((tiny_model / "manifest.json").read_text())["thresholds"]
    assert trials["detection"] == thresholds["detection"]
    assert 0.0 <= trials["far"] <= 1.0 and 0.0 <= trials["frr"] <= 1.0
    assert main(["evaluate", "--dataset", str(lfw_images), "--door-trials", "5"]) == 1
    assert "--door-trials goes with --lfw" in capsys.readouterr().err


def test_usage_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--lfw", str(tmp_path)]) == 1
    assert "--lfw needs --pairs" in capsys.readouterr().err
    missing = tmp_path / "pairs.txt"
    assert main(["evaluate", "--lfw", str(tmp_path), "--pairs", str(missing)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegate: error:") and "\n" not in err
