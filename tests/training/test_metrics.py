"""Verification metrics on hand-made score tables with known answers."""

import numpy as np
import pytest

from facegate.training import metrics

GENUINE = [0.4, 0.6, 0.8, 0.9]
IMPOSTOR = [0.1, 0.2, 0.3, 0.5]


def _table(genuine: list[float], impostor: list[float]) -> tuple[np.ndarray, np.ndarray]:
    scores = np.array(genuine + impostor)
    labels = np.array([1] * len(genuine) + [0] * len(impostor))
    return scores, labels


def test_auc_perfect_reversed_and_chance() -> None:
    s, y = _table([0.9, 0.8], [0.2, 0.1])
    assert metrics.auc(s, y) == 1.0
    assert metrics.auc(-s, y) == 0.0
    tied, _ = _table([0.5, 0.5], [0.5, 0.5])
    assert metrics.auc(tied, y) == pytest.approx(0.5)


def test_auc_counts_ordered_pairs() -> None:
    s, y = _table(GENUINE, IMPOSTOR)
    # 16 genuine/impostor comparisons, one inverted (0.4 < 0.5): 15/16.
    assert metrics.auc(s, y) == pytest.approx(15 / 16)


def test_eer_known_case() -> None:
    s, y = _table(GENUINE, IMPOSTOR)
    # At threshold 0.5: one impostor of four accepted, one genuine of four rejected.
    assert metrics.eer(s, y) == pytest.approx(0.25)
    s, y = _table([0.9, 0.8], [0.2, 0.1])
    assert metrics.eer(s, y) == 0.0


def test_eer_interpolates_between_points() -> None:
    s, y = _table([0.9, 0.3], [0.6, 0.1])
    # ROC: (0,0.5) at 0.9, (0.5,0.5) at 0.6, (0.5,1) at 0.3: FAR=FRR=0.5 on the segment.
    assert metrics.eer(s, y) == pytest.approx(0.5)


def test_tar_at_far_is_conservative() -> None:
    genuine = list(np.linspace(0.5, 1.0, 100))
    impostor = [0.0] * 98 + [0.7, 0.95]
    s, y = _table(genuine, impostor)
    # FAR 1e-2 allows one impostor of 100: threshold just above 0.7 is the best allowed.
    expected = np.mean(np.array(genuine) > 0.7)
    assert metrics.tar_at_far(s, y, 1e-2) == pytest.approx(expected)
    # FAR 1e-3 allows none: only genuine scores above 0.95 are accepted.
    assert metrics.tar_at_far(s, y, 1e-3) == pytest.approx(np.mean(np.array(genuine) > 0.95))


def test_accuracy_and_best_threshold() -> None:
    s, y = _table(GENUINE, IMPOSTOR)
    assert metrics.accuracy_at(s, y, 0.5) == pytest.approx(6 / 8)  # 0.5 itself is accepted
    assert metrics.accuracy_at(s, y, 0.55) == pytest.approx(7 / 8)
    threshold, acc = metrics.best_threshold(s, y)
    assert acc == pytest.approx(7 / 8)
    assert metrics.accuracy_at(s, y, threshold) == pytest.approx(acc)


def test_cross_validation_never_sees_its_own_fold() -> None:
    # Folds 1..9 separate at 0.5; fold 0 alone would be perfect at 0.25 but is not allowed
    # to choose it, so the 0.5 threshold from the others rejects its genuine pairs.
    scores, labels, folds = [], [], []
    for k in range(10):
        g, i = (0.3, 0.2) if k == 0 else (0.9, 0.1)
        scores += [g, i]
        labels += [1, 0]
        folds += [k, k]
    cv = metrics.cross_validated_accuracy(np.array(scores), np.array(labels), np.array(folds))
    assert cv.fold_accuracies[0] == pytest.approx(0.5)
    assert all(a == 1.0 for a in cv.fold_accuracies[1:])
    assert cv.accuracy == pytest.approx(0.95)
    assert cv.fold_thresholds[0] > 0.3
    # Tuning on the test pairs themselves would have reached 100%: the CV figure is lower.
    _, in_sample = metrics.best_threshold(np.array(scores), np.array(labels))
    assert in_sample == 1.0


def test_make_folds_stratified_and_deterministic() -> None:
    labels = np.array([1] * 500 + [0] * 500)
    folds = metrics.make_folds(labels, 10)
    assert np.array_equal(folds, metrics.make_folds(labels, 10))
    for k in range(10):
        assert (labels[folds == k] == 1).sum() == 50
        assert (labels[folds == k] == 0).sum() == 50


def test_verification_report_keys_and_ranges() -> None:
    rng = np.random.default_rng(0)
    s = np.r_[rng.normal(0.7, 0.1, 200), rng.normal(0.3, 0.1, 200)]
    y = np.r_[np.ones(200), np.zeros(200)]
    report = metrics.verification_report(s, y, metrics.make_folds(y), 0.5)
    for key in ("accuracy", "best_accuracy", "auc", "eer", "tar_at_far_1e2", "tar_at_far_1e3"):
        assert 0.0 <= report[key] <= 1.0, key
    assert report["pairs"] == 400
    assert report["auc"] > 0.95


def test_rejects_single_class() -> None:
    with pytest.raises(ValueError, match="genuine and one impostor"):
        metrics.auc(np.array([0.1, 0.2]), np.array([1, 1]))
