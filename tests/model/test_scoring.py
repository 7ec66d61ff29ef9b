"""SiameseHead in numpy scores exactly what the Keras Siamese model outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from facegate.model.bundle import load_model_dir
from facegate.model.scoring import SiameseHead


def test_numpy_head_equals_keras_model(tiny_model_dir: Any, crops: np.ndarray) -> None:
    loaded = load_model_dir(tiny_model_dir)
    pre = loaded.manifest.preprocessing
    x = crops.astype(np.float32) * pre.scale + np.asarray(pre.offset, np.float32)
    probe = np.repeat(x[:1], len(x), axis=0)
    keras_scores = loaded.siamese.predict([probe, x], verbose=0)[:, 0]
    embeddings = loaded.embed(crops)
    numpy_scores = loaded.head.scores(embeddings[0], embeddings)
    assert numpy_scores.shape == (len(crops),)
    np.testing.assert_allclose(numpy_scores, keras_scores, atol=1e-5)
    # The random head spreads the scores: the comparison is not between constants.
    assert np.ptp(keras_scores) > 0.05


def test_head_is_symmetric_and_bounded() -> None:
    rng = np.random.default_rng(0)
    head = SiameseHead(kernel=rng.normal(0, 50, 8).astype(np.float32), bias=3.0)
    a, b = rng.random((5, 8), dtype=np.float32), rng.random((5, 8), dtype=np.float32)
    np.testing.assert_array_equal(head.pair_scores(a, b), head.pair_scores(b, a))
    scores = head.scores(a[0], b)
    assert np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_allclose(head.scores(a[0], a[:1]), 1 / (1 + np.exp(-3.0)), rtol=1e-6)


def test_large_galleries_shared_out_among_cores_score_the_same(monkeypatch: Any) -> None:
    """Rows split on block boundaries across threads: every logit bit-identical to one thread."""
    import facegate.model.scoring as scoring

    rng = np.random.default_rng(3)
    head = SiameseHead(kernel=rng.normal(size=16).astype(np.float32), bias=0.5)
    gallery = rng.normal(size=(3 * 1024 + 77, 16)).astype(np.float32)
    probe = gallery[100]
    monkeypatch.setattr(scoring, "_PARALLEL_MIN_ROWS", 10**12)
    serial = head.logits(probe, gallery)
    monkeypatch.setattr(scoring, "_PARALLEL_MIN_ROWS", 1024)
    monkeypatch.setattr(scoring, "_workers", lambda rows: 3)
    shared = head.logits(probe, gallery)
    np.testing.assert_array_equal(shared, serial)
    expected = np.abs(gallery - probe) @ head.kernel + np.float32(0.5)
    np.testing.assert_allclose(shared, expected, rtol=1e-5, atol=1e-5)
