"""Vectorised gallery matching against a brute-force per-pair reference."""

from datetime import UTC, datetime

import numpy as np
import pytest

from facegate.daemon.matching import MatchIndex, match_probe
from facegate.model.manifest import Thresholds
from facegate.model.scoring import SiameseHead
from facegate.storage.records import GalleryMatrix, User


@pytest.fixture
def head() -> SiameseHead:
    rng = np.random.default_rng(0)
    return SiameseHead(kernel=-np.abs(rng.normal(size=8)).astype(np.float32), bias=3.0)


def _index(galleries: list[tuple[int, str, np.ndarray]]) -> MatchIndex:
    """A registry-shaped gallery matrix, rows deliberately not grouped by user."""
    now = datetime.now(UTC)
    rows = [(uid, emb) for uid, _, embs in galleries for emb in embs]
    rows = rows[1::2] + rows[0::2]
    users = {
        uid: User(uid, name, name, True, None, None, None, False, now, now, len(embs))
        for uid, name, embs in galleries
        if len(embs)
    }
    matrix = GalleryMatrix(
        model_sha256="x",
        vectors=np.array([e for _, e in rows], np.float32).reshape(len(rows), 8),
        user_ids=np.array([u for u, _ in rows], np.int64),
        image_ids=np.arange(len(rows), dtype=np.int64),
        users=users,
    )
    return MatchIndex.from_gallery(matrix)


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
    matrix = _index(galleries)
    thr = Thresholds(detection=0.6, verification=0.5)
    for _ in range(20):
        probe = galleries[1][2][0] + rng.normal(scale=0.3, size=8)
        got = match_probe(probe, matrix, head, thr)
        want = _reference(probe, galleries, head, thr)
        assert [(u.share, u.user_id) for u in got.ranked] == [(w[0], w[2]) for w in want[:2]]
        assert got.top is not None
        assert got.top.best == pytest.approx(want[0][1], abs=1e-6)
        assert got.top.mean == pytest.approx(want[0][4], abs=1e-6)


def test_grouping_and_empty_index(head: SiameseHead) -> None:
    index = _index([(4, "b", np.ones((2, 8))), (2, "a", np.zeros((3, 8)))])
    assert index.user_ids == (2, 4)
    assert index.user_names == ("a", "b")
    assert index.counts.tolist() == [3, 2]
    assert index.size == 5
    empty = _index([])
    assert match_probe(np.zeros(8), empty, head, Thresholds()).top is None
