"""Verification metrics over pair scores (pure numpy): ROC, AUC, EER, TAR@FAR, accuracy.

Conventions everywhere: ``scores`` is (N,) float, higher is more similar; ``labels`` is (N,)
with 1/True for a genuine pair (same person) and 0/False for an impostor pair; a pair is
accepted when ``score >= threshold``. FAR is the share of impostor pairs accepted, TAR the
share of genuine pairs accepted, FRR = 1 - TAR. All rates are fractions in [0, 1].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in length")
    if not y.any() or y.all():
        raise ValueError("need at least one genuine and one impostor pair")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return s, y


@dataclass(frozen=True)
class Roc:
    """ROC points ordered by decreasing threshold: ``far``, ``tar``, ``thresholds`` (K,) each.

    The first point is (FAR 0, TAR 0) at threshold +inf; point k accepts ``score >= thresholds[k]``.
    """

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> Roc:
    """The full ROC curve: one point per distinct score, plus the origin."""
    s, y = _check(scores, labels)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # Keep the last index of each run of equal scores: ties are accepted together.
    last_of_run = np.r_[np.nonzero(np.diff(s_sorted))[0], s_sorted.size - 1]
    genuine_accepted = np.cumsum(y_sorted)[last_of_run]
    impostor_accepted = (last_of_run + 1) - genuine_accepted
    tar = np.r_[0.0, genuine_accepted / y.sum()]
    far = np.r_[0.0, impostor_accepted / (~y).sum()]
    thresholds = np.r_[np.inf, s_sorted[last_of_run]]
    return Roc(far=far, tar=tar, thresholds=thresholds)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve in [0, 1]: P(genuine score > impostor score), ties count half."""
    roc = roc_curve(scores, labels)
    return float(np.trapezoid(roc.tar, roc.far))


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate in [0, 1]: where FAR = FRR, linearly interpolated between ROC points."""
    roc = roc_curve(scores, labels)
    diff = roc.far - (1.0 - roc.tar)  # rises from -1 at the origin to +1 at accept-all
    k = int(np.argmax(diff >= 0))
    if k == 0 or diff[k] == 0:
        return float(roc.far[k])
    t = diff[k - 1] / (diff[k - 1] - diff[k])
    return float(roc.far[k - 1] + t * (roc.far[k] - roc.far[k - 1]))


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """TAR at a target FAR, conservative: the best TAR of any threshold whose FAR <= ``far``.

    No interpolation between ROC points: with M impostor pairs the reachable FARs are k/M, so
    e.g. FAR 1e-3 on 500 impostor pairs means no impostor may be accepted at all.
    """
    roc = roc_curve(scores, labels)
    allowed = roc.far <= far + 1e-12
    return float(roc.tar[allowed].max())


def accuracy_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Share of pairs classified correctly when accepting ``score >= threshold``; in [0, 1]."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.size == 0:
        raise ValueError("no pairs")
    return float(np.mean((s >= threshold) == y))


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The threshold maximising accuracy on these pairs, and that accuracy.

    Candidates are midpoints between consecutive distinct scores (and one beyond each end);
    among equally good candidates the middle one is taken.
    """
    s, y = _check(scores, labels)
    distinct = np.unique(s)
    candidates = np.r_[distinct[0] - 1e-6, (distinct[:-1] + distinct[1:]) / 2, distinct[-1] + 1e-6]
    genuine = np.sort(s[y])
    impostor = np.sort(s[~y])
    genuine_accepted = genuine.size - np.searchsorted(genuine, candidates, side="left")
    impostor_rejected = np.searchsorted(impostor, candidates, side="left")
    correct = genuine_accepted + impostor_rejected
    best = np.flatnonzero(correct == correct.max())
    k = best[best.size // 2]
    return float(candidates[k]), float(correct[k] / s.size)


def make_folds(labels: np.ndarray, n_folds: int = 10) -> np.ndarray:
    """Deterministic stratified fold ids (N,) int: the k-th genuine and k-th impostor pair
    (in list order) go to fold ``k % n_folds``, so every fold has both classes evenly.

    With fewer pairs of a class than ``n_folds``, that count of folds is used instead.
    """
    y = np.asarray(labels).ravel().astype(bool)
    n_folds = max(1, min(n_folds, int(y.sum()), int((~y).sum())))
    folds = np.empty(y.size, dtype=np.int64)
    for cls in (True, False):
        idx = np.flatnonzero(y == cls)
        folds[idx] = np.arange(idx.size) % n_folds
    return folds


@dataclass(frozen=True)
class CrossValidation:
    """Cross-validated accuracy: mean over folds, and each fold's threshold and accuracy."""

    accuracy: float
    fold_accuracies: tuple[float, ...]
    fold_thresholds: tuple[float, ...]

    @property
    def std(self) -> float:
        """Standard deviation of the fold accuracies."""
        return float(np.std(self.fold_accuracies))


def cross_validated_accuracy(
    scores: np.ndarray, labels: np.ndarray, folds: np.ndarray
) -> CrossValidation:
    """Accuracy with the threshold of each fold chosen on the other folds only (LFW's rule).

    ``folds`` (N,) int gives each pair's fold; the threshold applied to fold k is the
    ``best_threshold`` of all pairs not in fold k, so no fold ever tunes on itself.
    """
    s, y = _check(scores, labels)
    folds = np.asarray(folds).ravel()
    if folds.shape != s.shape:
        raise ValueError("folds must have one id per pair")
    ids = np.unique(folds)
    if ids.size < 2:
        raise ValueError("cross-validation needs at least two folds")
    accuracies, thresholds = [], []
    for k in ids:
        test = folds == k
        threshold, _ = best_threshold(s[~test], y[~test])
        thresholds.append(threshold)
        accuracies.append(accuracy_at(s[test], y[test], threshold))
    return CrossValidation(
        accuracy=float(np.mean(accuracies)),
        fold_accuracies=tuple(accuracies),
        fold_thresholds=tuple(thresholds),
    )


def verification_report(
    scores: np.ndarray, labels: np.ndarray, folds: np.ndarray, threshold: float
) -> dict[str, float | int | None]:
    """The standard numbers for one pair set, as a JSON-ready dict (rates in [0, 1])."""
    s, y = _check(scores, labels)
    cv = cross_validated_accuracy(s, y, folds) if np.unique(folds).size >= 2 else None
    accepted = s >= threshold
    return {
        "pairs": int(s.size),
        "genuine_pairs": int(y.sum()),
        "impostor_pairs": int((~y).sum()),
        "threshold": float(threshold),
        "accuracy": accuracy_at(s, y, threshold),
        "far": float(accepted[~y].mean()),
        "frr": float((~accepted[y]).mean()),
        # None when the pairs are too few for two folds with both classes.
        "best_accuracy": cv.accuracy if cv else None,
        "best_accuracy_std": cv.std if cv else None,
        "auc": auc(s, y),
        "eer": eer(s, y),
        "tar_at_far_1e2": tar_at_far(s, y, 1e-2),
        "tar_at_far_1e3": tar_at_far(s, y, 1e-3),
    }
