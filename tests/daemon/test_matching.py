"""Vectorised gallery matching against a brute-force per-pair reference."""

import numpy as np
import pytest

from facegate.daemon.matching import GalleryMatrix, match_probe
from facegate.model.manifest import Thresholds
from facegate.model.scoring import SiameseHead


@pytest.fixture
def head() -> SiameseHead:
    rng = np.random.default_rng(0)
    return SiameseHead(kernel=-np.abs(rng.normal(size=8)).astype(np.float32), bias=3.0)


def _reference(probe, galleries, head, thr):
    out = []
    for uid, name, emb in galleries:
        scores = [float(head.pair_scores(probe[None], e[None])[0]) for e in emb]
        share = sum(s >= thr.detection for s in scores) / len(scores)
        out.append((share, max(scores), uid, name, float(np.mean(scores))))
    out.sort(key=lambda t: (-t[0], -t[1]))
    return out


def test_matches_brute_force(head: SiameseHead) -> None:
    rng = np.random.default_rng(1)
    galleries = [(uid, f"u{uid}", rng.normal(size=(n, 8))) for uid, n in [(3, 2), (7, 5), (9, 1)]]
    matrix = GalleryMatrix.build(galleries, dim=8, model_sha256="x")
    thr = Thresholds(detection=0.6, verification=0.5)
    for _ in range(20):
        probe = galleries[1][2][0] + rng.normal(scale=0.3, size=8)
        got = match_probe(probe, matrix, head, thr)
        want = _reference(probe, galleries, head, thr)
        assert [(u.share, u.user_id) for u in got.ranked] == [(w[0], w[2]) for w in want[:2]]
        assert got.top is not None
        assert got.top.best == pytest.approx(want[0][1], abs=1e-6)
        assert got.top.mean == pytest.approx(want[0][4], abs=1e-6)


def test_empty_galleries_are_left_out(head: SiameseHead) -> None:
    matrix = GalleryMatrix.build([(1, "a", np.zeros((0, 8))), (2, "b", np.ones((2, 8)))], 8, "x")
    assert matrix.user_ids == (2,)
    assert matrix.size == 2
    empty = GalleryMatrix.build([], 8, "x")
    assert match_probe(np.zeros(8), empty, head, Thresholds()).top is None
