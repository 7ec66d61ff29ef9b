"""Training end to end on tiny real-face folders: seed mode and identity mode."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facegate.config import FaceConfig
from facegate.errors import ModelError
from facegate.training import lfw, train

PEOPLE = ["Aaron_Eckhart", "Abdullah_Gul", "Alvaro_Uribe", "Amelie_Mauresmo", "Andre_Agassi"]


def _seed_layout(lfw_images: Path, root: Path, n: int = 4) -> Path:
    bush = sorted((lfw_images / "George_W_Bush").iterdir())
    for folder, files in (
        ("anchor", bush[:n]),
        ("positive", bush[n : 2 * n]),
        ("negative", [sorted((lfw_images / p).iterdir())[0] for p in PEOPLE[:n]]),
    ):
        (root / folder).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / folder / f.name)
    return root


IDENTITY_PEOPLE = [
    "Aaron_Peirsol",
    "Abdoulaye_Wade",
    "Abdullah_Gul",
    "Adam_Sandler",
    "Alvaro_Uribe",
    "Amelie_Mauresmo",
    "Andre_Agassi",
]


def _tree(lfw_images: Path, root: Path) -> Path:
    for person in IDENTITY_PEOPLE:
        (root / person).mkdir(parents=True)
        for img in sorted((lfw_images / person).iterdir())[:3]:
            shutil.copy(img, root / person / img.name)
    return root


@pytest.mark.slow
def test_seed_model_trains_one_epoch(lfw_images: Path, tmp_path: Path) -> None:
    data = _seed_layout(lfw_images, tmp_path / "seed")
    options = train.TrainOptions(
        mode="seed",
        data=data,
        out=tmp_path / "run",
        arch="seed",
        epochs=1,
        batch_size=8,
        verbose=0,
        run_eagerly=True,
    )
    result = train.train(options, FaceConfig())
    manifest = json.loads((result.model_dir / "manifest.json").read_text())
    assert manifest["arch"] == "seed" and manifest["input_size"] == 100
    assert manifest["training"]["mode"] == "seed"
    assert manifest["training"]["epochs_run"] == 1
    assert 0.0 < manifest["thresholds"]["detection"] < 1.0
    assert (result.model_dir / "training_curve.png").stat().st_size > 1000
    assert (tmp_path / "run" / "checkpoints" / "last.keras").is_file()


@pytest.mark.slow
def test_identity_mode_compact_roundtrip_and_resume(
    lfw_images: Path, lfw_protocol: Path, tmp_path: Path
) -> None:
    from facegate.model.bundle import load_model_dir

    data = _tree(lfw_images, tmp_path / "tree")
    excluded = tmp_path / "pairsSmall.txt"
    excluded.write_text("1\nAaron_Peirsol\t1\t2\nAbdullah_Gul\t1\tAlvaro_Uribe\t1\n")
    options = train.TrainOptions(
        mode="identity",
        data=data,
        out=tmp_path / "run",
        arch="compact",
        epochs=1,
        batch_size=4,
        pairs_per_epoch=8,
        val_pairs=8,
        val_fraction=0.5,
        input_size=32,
        embedding_dim=16,
        exclude_pairs=(excluded,),
        verbose=0,
        run_eagerly=True,
    )
    result = train.train(options, FaceConfig())
    loaded = load_model_dir(result.model_dir)
    manifest = loaded.manifest
    exclusion = manifest.training["exclusion"]
    assert exclusion["excluded_people"] == 3
    assert exclusion["identity_list_sha256"] == lfw.identity_checksum(
        ["Aaron_Peirsol", "Abdullah_Gul", "Alvaro_Uribe"]
    )
    assert manifest.training["data"]["people"] == 4  # the excluded three never reach training
    assert manifest.input_size == 32 and manifest.embedding_dim == 16
    assert set(manifest.metrics["validation"]) >= {"accuracy", "auc", "eer"}

    # The saved model predicts exactly what the trained one did.
    trained = train._load_checkpoint(tmp_path / "run" / "checkpoints" / "last.keras")
    trained.load_weights(tmp_path / "run" / "checkpoints" / "best.weights.h5")
    crops = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    x = crops.astype(np.float32) * manifest.preprocessing.scale + np.asarray(
        manifest.preprocessing.offset, np.float32
    )
    expected = np.asarray(trained([x, x[::-1]], training=False)).ravel()
    got = np.asarray(loaded.siamese([x, x[::-1]], training=False)).ravel()
    np.testing.assert_array_equal(got, expected)
    emb = loaded.embed(crops)
    np.testing.assert_allclose(loaded.head.pair_scores(emb, emb[::-1]), expected, atol=1e-5)

    resumed = train.train(
        train.TrainOptions(**{**options.__dict__, "epochs": 2, "resume": True}), FaceConfig()
    )
    assert resumed.epochs_run == 2
    history = (tmp_path / "run" / "checkpoints" / "history.csv").read_text().splitlines()
    assert len(history) == 3  # header + one row per epoch, appended on resume

    other = train.TrainOptions(**{**options.__dict__, "arch": "seed", "resume": True})
    with pytest.raises(ModelError, match="checkpoints are arch 'compact'"):
        train.train(other, FaceConfig())


def test_resume_without_checkpoint_is_an_error(tmp_path: Path) -> None:
    options = train.TrainOptions(mode="identity", data=tmp_path, out=tmp_path / "run", resume=True)
    with pytest.raises(ModelError, match="nothing to resume"):
        train.train(options, FaceConfig())
