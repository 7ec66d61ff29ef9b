"""Threshold calibration on the site's own galleries: FAR and FRR at the door's thresholds,
and pairs of users whose galleries are too close to tell apart.

Genuine pairs are two images of one user's gallery; impostor pairs are images of two users.
Scores are the Siamese head's probabilities in [0, 1] (higher is more similar); a pair is
accepted at ``score >= detection threshold``.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from facegate.config import FacegateConfig
from facegate.model.manifest import Manifest, Thresholds
from facegate.model.scoring import SiameseHead
from facegate.storage.records import GalleryMatrix
from facegate.storage.registry import Registry

if TYPE_CHECKING:
    from facegate.model.bundle import LoadedModel

logger = logging.getLogger(__name__)


def door_thresholds(config: FacegateConfig, manifest: Manifest) -> Thresholds:
    """The thresholds the door applies: the manifest's, with the config's overrides."""
    return Thresholds(
        detection=config.model.detection_threshold or manifest.thresholds.detection,
        verification=config.model.verification_threshold or manifest.thresholds.verification,
    )


@dataclass(frozen=True)
class CloseUsers:
    """Two users whose galleries overlap: mean cross score in [0, 1], and how many of the
    first's images the door would verify as the second (and the reverse)."""

    user_a: str
    user_b: str
    mean_score: float
    confusable_images: int


@dataclass(frozen=True)
class CalibrationReport:
    """FAR and FRR (fractions in [0, 1], None without such pairs) at the door's thresholds."""

    model_sha256: str
    thresholds: Thresholds
    genuine_pairs: int
    impostor_pairs: int
    far: float | None
    frr: float | None
    close_users: tuple[CloseUsers, ...] = ()

    def summary(self) -> str:
        """One line for the job log."""

        def rate(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.4f}"

        text = (
            f"FAR {rate(self.far)} over {self.impostor_pairs} impostor pairs, FRR "
            f"{rate(self.frr)} over {self.genuine_pairs} genuine pairs at detection "
            f"{self.thresholds.detection:.3f}"
        )
        if self.close_users:
            text += "; too close: " + ", ".join(f"{c.user_a}/{c.user_b}" for c in self.close_users)
        return text


def _verified_as(scores: np.ndarray, thresholds: Thresholds) -> int:
    """How many probes (rows of (P, G) ``scores``) the door's rule would verify as the
    gallery's owner: at least ``verification`` of the gallery matching."""
    share = np.mean(scores >= thresholds.detection, axis=1)
    return int(np.sum(share >= thresholds.verification))


def calibrate_matrix(
    matrix: GalleryMatrix, head: SiameseHead, thresholds: Thresholds, lookalike_score: float
) -> CalibrationReport:
    """Calibrate from one model's gallery matrix (pure numpy); see the module doc."""
    genuine_accepted = genuine = impostor_accepted = impostor = 0
    close: list[CloseUsers] = []
    ids = sorted(matrix.users)
    rows = {uid: matrix.rows_of(uid) for uid in ids}
    for uid in ids:
        own = rows[uid]
        if len(own) >= 2:
            scores = head.pair_scores(own[:, None, :], own[None, :, :])
            upper = scores[np.triu_indices(len(own), k=1)]
            genuine += upper.size
            genuine_accepted += int(np.sum(upper >= thresholds.detection))
    for a, b in itertools.combinations(ids, 2):
        scores = head.pair_scores(rows[a][:, None, :], rows[b][None, :, :])
        impostor += scores.size
        impostor_accepted += int(np.sum(scores >= thresholds.detection))
        mean = float(np.mean(scores))
        confusable = _verified_as(scores, thresholds) + _verified_as(scores.T, thresholds)
        if confusable or mean > lookalike_score:
            close.append(
                CloseUsers(matrix.users[a].name, matrix.users[b].name, round(mean, 4), confusable)
            )
    return CalibrationReport(
        model_sha256=matrix.model_sha256,
        thresholds=thresholds,
        genuine_pairs=genuine,
        impostor_pairs=impostor,
        far=impostor_accepted / impostor if impostor else None,
        frr=1.0 - genuine_accepted / genuine if genuine else None,
        close_users=tuple(sorted(close, key=lambda c: -c.mean_score)),
    )


def calibrate(registry: Registry, model: LoadedModel, config: FacegateConfig) -> CalibrationReport:
    """Calibrate the active users' galleries as embedded by ``model``; warn on close users."""
    matrix = registry.gallery_matrix(model.space)
    report = calibrate_matrix(
        matrix,
        model.head,
        door_thresholds(config, model.manifest),
        config.enrollment.lookalike_score,
    )
    for pair in report.close_users:
        logger.warning(
            "galleries of %r and %r are too close to separate (mean score %.3f, %d images "
            "would verify as the other): re-enroll one or raise the thresholds",
            pair.user_a,
            pair.user_b,
            pair.mean_score,
            pair.confusable_images,
        )
    logger.info("calibration: %s", report.summary())
    return report
