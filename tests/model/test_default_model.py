"""The model shipped in the package: loads with no arguments, small, documented, and works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facegate.model.bundle import DEFAULT_MODEL_DIR
from facegate.model.manifest import Manifest

MAX_BYTES = 20 * 1024 * 1024

pytestmark = pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "manifest.json").is_file(), reason="no default model in the package"
)


@pytest.fixture(scope="module")
def model():
    from facegate.model.bundle import load_model_dir

    return load_model_dir(None)


def test_manifest_records_provenance() -> None:
    manifest = Manifest.read(DEFAULT_MODEL_DIR)
    assert manifest.arch == "dlib_resnet_flip_l2"
    assert manifest.input_size == 150
    assert manifest.embedding_dim == 128
    assert len(manifest.template) == 4
    assert 0 < manifest.thresholds.detection < 1
    assert 0 < manifest.thresholds.verification <= 1
    # The door compares a probe with every gallery image: it asks more of each comparison.
    assert manifest.thresholds.pair is not None
    assert 0 < manifest.thresholds.pair < manifest.thresholds.detection
    source = manifest.training["source"]
    assert "CC0" in source["licence"]
    assert len(source["sha256"]) == 64
    assert manifest.training["exclusion_rule"] == "every person in pairsDevTest.txt"
    assert "pairsDevTest" in manifest.metrics


def test_exclusion_checksum_matches_devtest(lfw_protocol: Path) -> None:
    from facegate.training.lfw import identity_checksum, protocol_people

    manifest = Manifest.read(DEFAULT_MODEL_DIR)
    devtest = protocol_people(lfw_protocol / "pairsDevTest.txt")
    assert manifest.training["excluded_sha256"] == identity_checksum(devtest)
    assert manifest.training["excluded_people"] == len(devtest) == 963


def test_size_within_budget() -> None:
    total = sum(f.stat().st_size for f in DEFAULT_MODEL_DIR.iterdir() if f.is_file())
    assert total <= MAX_BYTES


def test_loads_and_verifies_lfw_faces(model, lfw_images: Path) -> None:
    """Same person scores above the detection threshold, different people below it."""
    from facegate.config import FaceConfig
    from facegate.face.image_io import load_image
    from facegate.face.pipeline import FacePipeline
    from facegate.training.datasets import labelled_crop

    pipeline = FacePipeline(FaceConfig(), model.manifest.align_spec)
    names = ["Colin_Powell_0001", "Colin_Powell_0002", "Tony_Blair_0001", "Tony_Blair_0002"]
    crops = np.stack(
        [labelled_crop(pipeline, load_image(lfw_images / n[:-5] / f"{n}.jpg"))[0] for n in names]
    )
    emb = model.embed(crops)
    assert emb.shape == (4, 128)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    threshold = model.manifest.thresholds.detection
    same = model.head.pair_scores(emb[[0, 2]], emb[[1, 3]])
    different = model.head.pair_scores(emb[[0, 1]], emb[[2, 3]])
    # Deny on doubt: strangers stay below even the lenient 1:1 threshold; the same person
    # clears the door's strict one.
    assert (different < model.manifest.thresholds.one_to_one).all(), different
    assert (same > threshold).all(), same
    # The Keras Siamese model and the numpy head agree.
    pre = model.manifest.preprocessing
    x = crops.astype(np.float32) * pre.scale + np.asarray(pre.offset, np.float32)
    keras_scores = model.siamese.predict([x[[0, 2]], x[[1, 3]]], verbose=0).ravel()
    np.testing.assert_allclose(keras_scores, same, atol=1e-4)


def test_litert_export_agrees_with_tensorflow(model, lfw_images: Path) -> None:
    """The packaged int8 LiteRT tower scores pairs like the TensorFlow one, without TensorFlow."""
    from facegate.config import FaceConfig
    from facegate.face.image_io import load_image
    from facegate.face.pipeline import FacePipeline
    from facegate.model.bundle import load_model_dir
    from facegate.training.datasets import labelled_crop

    lite = load_model_dir(None, runtime="litert")
    assert lite.siamese is None
    assert lite.manifest.sha256 == model.manifest.sha256
    pipeline = FacePipeline(FaceConfig(), model.manifest.align_spec)
    names = ["Colin_Powell_0001", "Colin_Powell_0002", "Tony_Blair_0001", "Tony_Blair_0002"]
    crops = np.stack(
        [labelled_crop(pipeline, load_image(lfw_images / n[:-5] / f"{n}.jpg"))[0] for n in names]
    )
    pairs = ([0, 2, 0, 1], [1, 3, 2, 3])
    ref = model.head.pair_scores(*(model.embed(crops)[i] for i in pairs))
    got = lite.head.pair_scores(*(lite.embed(crops)[i] for i in pairs))
    # int8 moves mid-range scores by a few hundredths (DevTest accuracy 0.948 vs 0.949).
    assert np.abs(got - ref).max() < 0.1, (got, ref)
    thresholds = model.manifest.thresholds
    assert (got[:2] > thresholds.detection).all(), got
    assert (got[2:] < thresholds.one_to_one).all(), got


def test_fast_variant_verifies_lfw_faces_on_both_runtimes(lfw_images: Path) -> None:
    """The fast variant: the int8 file's plain tower, once per face, with its own head."""
    from facegate.config import FaceConfig
    from facegate.face.image_io import load_image
    from facegate.face.pipeline import FacePipeline
    from facegate.model.bundle import load_model_dir
    from facegate.training.datasets import labelled_crop

    manifest = Manifest.read(DEFAULT_MODEL_DIR)
    assert manifest.tflite["int8"]["flip_average"] is True
    assert manifest.tflite["int8"]["l2_normalize"] is True
    variant = manifest.variants["fast"]
    assert not variant.flip_average
    assert "pairsDevTest" in variant.metrics
    assert variant.thresholds != manifest.thresholds
    names = ["Colin_Powell_0001", "Colin_Powell_0002", "Tony_Blair_0001", "Tony_Blair_0002"]
    pipeline = FacePipeline(FaceConfig(), manifest.align_spec)
    crops = np.stack(
        [labelled_crop(pipeline, load_image(lfw_images / n[:-5] / f"{n}.jpg"))[0] for n in names]
    )
    pairs = ([0, 2, 0, 1], [1, 3, 2, 3])
    scores = {}
    for runtime in ("tensorflow", "litert"):
        fast = load_model_dir(None, runtime, "fast")
        assert fast.manifest.thresholds == variant.thresholds
        scores[runtime] = fast.head.pair_scores(*(fast.embed(crops)[i] for i in pairs))
        got = scores[runtime]
        assert (got[:2] > variant.thresholds.detection).all(), got
        assert (got[2:] < variant.thresholds.one_to_one).all(), got
    assert np.abs(scores["litert"] - scores["tensorflow"]).max() < 0.1, scores
