"""Head training on cached embeddings: pair sampling, BCE fit, people split."""

from __future__ import annotations

import numpy as np

from facegate.model.scoring import SiameseHead
from facegate.training.head import (
    HeadConfig,
    euclidean_scores,
    sample_pairs,
    split_people,
    train_head,
)
from facegate.training.metrics import auc


def _clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(30), 4)
    centres = rng.normal(size=(30, 16))
    return (centres[labels] + rng.normal(size=(120, 16)) * 0.3).astype(np.float32), labels


def test_sample_pairs_is_balanced_and_labelled() -> None:
    _, labels = _clusters()
    pairs = sample_pairs(labels, 200, 300, seed=1)
    assert len(pairs) == 500
    assert pairs.labels.sum() == 200
    same = labels[pairs.a] == labels[pairs.b]
    np.testing.assert_array_equal(same, pairs.labels == 1)
    assert (pairs.a != pairs.b).all()


def test_split_people_keeps_people_whole() -> None:
    _, labels = _clusters()
    held = split_people(labels, 0.2, seed=0)
    assert held.sum() == 6 * 4
    for person in np.unique(labels):
        assert len(set(held[labels == person])) == 1


def test_trained_head_separates_pairs() -> None:
    embeddings, labels = _clusters()
    pairs = sample_pairs(labels, 400, 400, seed=2)
    kernel, bias, losses = train_head(embeddings, pairs, HeadConfig(epochs=20, batch_size=64))
    assert kernel.shape == (16,)
    assert losses[-1] < losses[0]
    head = SiameseHead(kernel=kernel, bias=bias)
    test = sample_pairs(labels, 200, 200, seed=3)
    scores = head.pair_scores(embeddings[test.a], embeddings[test.b])
    assert auc(scores, test.labels) > 0.95
    assert auc(euclidean_scores(embeddings, test), test.labels) > 0.95
    # Larger L1 distance must lower the score: the learned weights are mostly negative.
    assert (kernel < 0).mean() > 0.5
