"""Threshold calibration: FAR targets on pairs and simulated galleries."""

from __future__ import annotations

import numpy as np
import pytest

from facegate.training.calibrate import (
    GalleryTrials,
    choose_verification,
    rates_at,
    simulate_galleries,
    threshold_at_far,
)


def test_threshold_at_far_accepts_at_most_the_target() -> None:
    impostors = np.linspace(0.0, 0.999, 1000)
    for far in (0.0, 1e-3, 1e-2, 0.1):
        threshold = threshold_at_far(impostors, far)
        accepted = np.mean(impostors >= threshold)
        assert accepted <= far
        # ...and not needlessly strict: the next lower impostor score would exceed the target.
        assert np.mean(impostors >= np.sort(impostors)[::-1][int(far * 1000)]) > far


def test_threshold_at_far_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        threshold_at_far(np.array([]), 0.01)
    with pytest.raises(ValueError):
        threshold_at_far(np.array([0.5]), 1.0)


def test_rates_at() -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0])
    assert rates_at(scores, labels, 0.5) == pytest.approx((1 / 3, 1 / 3))


def test_gallery_simulation_separates_clean_identities() -> None:
    """Well-separated identities: genuine probes match their whole gallery, impostors none."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 8)) * 10
    labels = np.repeat(np.arange(40), 6)
    embeddings = centres[labels] + rng.normal(size=(240, 8)) * 0.1

    def score(probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        return np.exp(-np.linalg.norm(gallery - probe, axis=1))

    trials = simulate_galleries(embeddings, labels, score, detection=0.3, trials=600)
    assert trials.match_share[trials.genuine].min() == 1.0
    assert trials.match_share[~trials.genuine].max() == 0.0
    assert set(trials.gallery_sizes) == {3, 4, 5}
    assert trials.rates(0.5) == (0.0, 0.0)


def test_choose_verification_prefers_low_frr_within_far() -> None:
    shares = np.array([1.0, 0.8, 0.6, 0.4, 0.0, 0.2, 0.4, 0.0])
    genuine = np.array([True, True, True, True, False, False, False, False])
    trials = GalleryTrials(match_share=shares, genuine=genuine, gallery_sizes=(5,))
    chosen, table = choose_verification(trials, target_far=0.0)
    # At 0.5 no impostor (max 0.4) passes and only the 0.4 genuine fails.
    assert chosen == pytest.approx(0.5)
    assert table["0.50"] == {"far": 0.0, "frr": 0.25}
