"""Calibrate the seed's two thresholds on held-out pairs and simulated galleries (pure numpy).

``detection``: a single comparison matches when its Siamese score (probability in [0, 1],
higher is more similar) is at least this. ``verification``: a user is verified when the share
of their gallery images that match is at least this. Deny on doubt: a false accept opens the
door to a stranger, so both are chosen for a target false-accept rate, not for balance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# Shares of the gallery that may be required to match (the verification threshold).
VERIFICATION_CANDIDATES: tuple[float, ...] = tuple(round(v, 2) for v in np.arange(0.1, 1.01, 0.1))


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """Lowest threshold accepting at most ``far`` of ``impostor_scores`` (score >= threshold).

    ``far`` in [0, 1); the result lies just above the k-th highest impostor score,
    k = floor(far * N), so at most k impostors score at or above it.
    """
    scores = np.sort(np.asarray(impostor_scores, dtype=np.float64).ravel())[::-1]
    if scores.size == 0:
        raise ValueError("need impostor scores")
    if not 0.0 <= far < 1.0:
        raise ValueError("far must be in [0, 1)")
    k = int(np.floor(far * scores.size))
    return float(np.nextafter(scores[k], np.inf))


def rates_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FAR, FRR) of pairs at ``threshold``: shares of impostors accepted, genuines rejected."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    accepted = s >= threshold
    return float(accepted[~y].mean()), float((~accepted[y]).mean())


@dataclass(frozen=True)
class GalleryTrials:
    """Simulated verifications: per trial, the share (in [0, 1]) of gallery images that
    matched at the detection threshold, and whether the probe was the gallery's owner."""

    match_share: np.ndarray
    genuine: np.ndarray
    gallery_sizes: tuple[int, ...]

    def rates(self, verification: float) -> tuple[float, float]:
        """(FAR, FRR) of whole verifications at a verification threshold."""
        verified = self.match_share >= verification - 1e-9
        return float(verified[~self.genuine].mean()), float((~verified[self.genuine]).mean())


def simulate_galleries(
    embeddings: np.ndarray,
    labels: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    detection: float,
    gallery_sizes: Sequence[int] = (3, 4, 5),
    trials: int = 20000,
    seed: int = 0,
) -> GalleryTrials:
    """Verify probes against galleries of 3-5 images drawn from people with enough images.

    Half the trials use another image of the gallery's owner (genuine), half an image of a
    different person (impostor). ``score(probe (D,), gallery (G, D)) -> (G,)`` is the head.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    people = np.unique(labels)
    members = {p: np.flatnonzero(labels == p) for p in people}
    shares = np.empty(trials, dtype=np.float64)
    genuine = np.zeros(trials, dtype=bool)
    sizes = tuple(int(g) for g in gallery_sizes)
    owners = {g: [p for p in people if members[p].size >= g + 1] for g in sizes}
    for g, who in owners.items():
        if not who:
            raise ValueError(f"no person has {g + 1} images for a gallery of {g}")
    for t in range(trials):
        g = sizes[t % len(sizes)]
        owner = owners[g][rng.integers(len(owners[g]))]
        chosen = rng.choice(members[owner], size=g + 1, replace=False)
        gallery = chosen[:g]
        genuine[t] = t % 2 == 0
        if genuine[t]:
            probe = chosen[g]
        else:
            other = owner
            while other == owner:
                other = people[rng.integers(people.size)]
            probe = rng.choice(members[other])
        shares[t] = float(np.mean(score(embeddings[probe], embeddings[gallery]) >= detection))
    return GalleryTrials(match_share=shares, genuine=genuine, gallery_sizes=sizes)


def choose_verification(
    trials: GalleryTrials,
    target_far: float,
    candidates: Sequence[float] = VERIFICATION_CANDIDATES,
) -> tuple[float, dict[str, dict[str, float]]]:
    """The verification threshold with the lowest FRR among those with FAR <= ``target_far``
    (the strictest candidate if none qualifies), and the (FAR, FRR) table of every candidate."""
    table: dict[str, dict[str, float]] = {}
    best: tuple[float, float] | None = None
    for v in candidates:
        far, frr = trials.rates(v)
        table[f"{v:.2f}"] = {"far": far, "frr": frr}
        if far <= target_far and (best is None or frr < best[1]):
            best = (v, frr)
    chosen = best[0] if best is not None else max(candidates)
    logger.info("verification threshold %.2f (target FAR %g)", chosen, target_far)
    return float(chosen), table
