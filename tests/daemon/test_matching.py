"""Vectorised gallery matching against a brute-force per-pair reference."""

from datetime import UTC, datetime

import numpy as np
import pytest

from facegate.daemon.matching import FrameMatch, MatchIndex, UserScore, match_probe
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


def _exact_reference(probe, index: MatchIndex, head: SiameseHead, thr: Thresholds):
    """The straightforward scorer: every row's sigmoid, per-user reductions, a full lexsort."""
    scores = head.pair_scores(probe[None, :], index.embeddings)
    matched = (scores >= thr.detection).astype(np.float32)
    shares = np.add.reduceat(matched, index.starts) / index.counts
    best = np.maximum.reduceat(scores, index.starts)
    mean = np.add.reduceat(scores.astype(np.float64), index.starts) / index.counts
    order = np.lexsort((-best, -shares))[:2]
    return [(index.user_ids[i], float(shares[i]), float(best[i]), float(mean[i])) for i in order]


def _assert_same(probe, index: MatchIndex, head: SiameseHead, thr: Thresholds) -> None:
    from facegate.daemon.decision import judge_frame

    got = match_probe(probe, index, head, thr)
    want = _exact_reference(probe, index, head, thr)
    assert [(u.user_id, u.share) for u in got.ranked] == [(w[0], w[1]) for w in want]
    for user, (_, _, best, mean) in zip(got.ranked, want, strict=True):
        assert user.best == pytest.approx(best, abs=1e-6)
        assert user.mean == pytest.approx(mean, abs=1e-5)
    # What the door does with it: same reason and same user, frame by frame.
    reference = FrameMatch(
        ranked=tuple(UserScore(0, uid, "", share, best, mean) for uid, share, best, mean in want)
    )
    for margin in (0.0, 0.02):
        ours, theirs = judge_frame(got, thr, margin), judge_frame(reference, thr, margin)
        assert ours.reason == theirs.reason
        assert (ours.verified and ours.verified.user_id) == (
            theirs.verified and theirs.verified.user_id
        )


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _matrix(vectors: np.ndarray, owners: np.ndarray) -> MatchIndex:
    now = datetime.now(UTC)
    users = {
        int(u): User(int(u), f"u{u}", f"u{u}", True, None, None, None, False, now, now)
        for u in np.unique(owners)
    }
    return MatchIndex.from_gallery(
        GalleryMatrix("x", vectors, owners, np.arange(len(owners), dtype=np.int64), users)
    )


@pytest.mark.parametrize("rows", [1, 7, 1023, 1024, 1025, 5000])
def test_blocked_scores_equal_one_shot_scores(rows: int) -> None:
    rng = np.random.default_rng(rows)
    head = SiameseHead(rng.normal(-2, 2, 32).astype(np.float32), 6.0)
    gallery = _unit(rng.normal(size=(rows, 32)))
    probe = gallery[0] + np.float32(0.01)
    np.testing.assert_allclose(
        head.scores(probe, gallery), head.pair_scores(probe[None], gallery), atol=1e-6
    )


def test_random_galleries_rank_and_decide_like_the_exact_reference() -> None:
    """Random galleries around the threshold: near-duplicates, strangers, equal rows, and
    saturated scores (sigmoid = 1.0 for several users: ties broken by registry order)."""
    rng = np.random.default_rng(8)
    dim = 32
    head = SiameseHead(-np.abs(rng.normal(1.0, 0.5, dim)).astype(np.float32), 9.0)
    for trial in range(60):
        users = int(rng.integers(1, 400)) if trial else 1
        owners = np.repeat(np.arange(1, users + 1), rng.integers(1, 8, users)).astype(np.int64)
        centres = _unit(rng.normal(size=(users, dim)))
        spread = rng.choice([0.0, 0.02, 0.1, 0.5])
        vectors = _unit(centres[owners - 1] + spread * rng.normal(size=(len(owners), dim)))
        if trial % 5 == 0:
            vectors[owners == 2] = vectors[owners == 1][0]  # two users share one face
        index = _matrix(vectors, owners)
        thr = Thresholds(detection=float(rng.choice([0.5, 0.9, 0.99, 1.0])), verification=0.3)
        for _ in range(5):
            who = int(rng.integers(users))
            probe = _unit(centres[who] + rng.choice([0.0, 0.05, 0.3, 1.0]) * rng.normal(size=dim))
            _assert_same(probe, index, head, thr)
        _assert_same(vectors[0], index, head, thr)  # an exact gallery row: saturated score


def test_real_faces_decide_like_the_exact_reference(lfw_images) -> None:
    """Real embeddings (the packaged model on LFW faces) against a gallery padded with
    thousands of synthetic users: same users, shares, decisions as the exact scorer."""
    from facegate.config import FaceConfig
    from facegate.face.image_io import load_image
    from facegate.face.pipeline import FacePipeline
    from facegate.model.bundle import load_model_dir

    model = load_model_dir(None, "litert")
    pipeline = FacePipeline(FaceConfig(), model.manifest.align_spec)
    people = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Ariel_Sharon"]
    crops, owners = [], []
    for uid, name in enumerate(people, start=1):
        for path in sorted((lfw_images / name).glob("*.jpg"))[:8]:
            face = pipeline.process(load_image(path)).face
            if face is not None:
                crops.append(face.crop)
                owners.append(uid)
    embeddings = model.embed(np.stack(crops))
    owners_arr = np.array(owners, np.int64)
    rng = np.random.default_rng(3)
    synthetic = _unit(rng.normal(size=(20_000, embeddings.shape[1])))
    thr = model.manifest.thresholds
    # Gallery: the first 5 of each person; probes: the rest, and everyone against a gallery
    # without their own images (strangers).
    first = np.concatenate([np.flatnonzero(owners_arr == u)[:5] for u in range(1, 6)])
    rest = np.setdiff1d(np.arange(len(owners)), first)
    index = _matrix(
        np.concatenate([embeddings[first], synthetic]),
        np.concatenate([owners_arr[first], 100 + np.arange(len(synthetic)) // 5]),
    )
    granted = 0
    for i in rest:
        _assert_same(embeddings[i], index, model.head, thr)
        verdict = match_probe(embeddings[i], index, model.head, thr)
        granted += verdict.top is not None and verdict.top.user_id == owners_arr[i]
    assert granted >= len(rest) // 2  # the real faces do match: the comparison is not vacuous
    strangers = _matrix(embeddings[owners_arr != 1], owners_arr[owners_arr != 1])
    for i in np.flatnonzero(owners_arr == 1):
        _assert_same(embeddings[i], strangers, model.head, thr)
