"""Promotion and rollback on a real site: worse rejected, better promoted with galleries
re-embedded, rollback restores the previous model and its embeddings, tampered files refused."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scheduler_support import PEOPLE, Site, enroll_people

from facegate.enrollment.embedding import read_model_crop
from facegate.errors import ModelError, StorageError
from facegate.scheduler.promote import activate, promote, rollback
from facegate.scheduler.retrain import (
    LFW_BENCHMARK,
    SITE_BENCHMARK,
    evaluate_models,
    judge_candidate,
    lfw_devtest_pairs,
    site_split,
)


def _embeddings_of(site: Site, model: Any) -> dict[int, np.ndarray]:
    return site.registry.get_embeddings(model.manifest.sha256)


def _expected(site: Site, model: Any) -> dict[int, np.ndarray]:
    images = site.registry.all_gallery_images()
    spec = model.manifest.align_spec
    crops = np.stack([read_model_crop(site.registry, i, spec) for i in images])
    return {i.id: v for i, v in zip(images, model.embed(crops), strict=True)}


def test_worse_candidate_is_rejected_and_nothing_changes(
    site: Site, models: dict[str, Any], lfw_root: Path
) -> None:
    exact, worse = models["exact"], models["reversed"]
    split = site_split(site.registry, 0.3, site.model.manifest.align_spec)
    lfw = lfw_devtest_pairs(lfw_root, 20)
    evaluation = evaluate_models({"old": exact, "new": worse}, split, lfw, site.config)
    assert set(evaluation["old"]) == set(evaluation["new"]) == {SITE_BENCHMARK, LFW_BENCHMARK}
    # The reversed head accepts impostors: a false accept weighs ten false rejects.
    assert evaluation["new"][SITE_BENCHMARK]["far"] > evaluation["old"][SITE_BENCHMARK]["far"]
    before = _embeddings_of(site, exact)

    version = judge_candidate(site.registry, worse, evaluation, far_weight=10.0)

    assert version.status == "rejected"
    assert version.why.startswith("rejected by retrain: worse on site_heldout")
    assert site.registry.active_model().sha256 == exact.manifest.sha256
    assert _embeddings_of(site, worse) == {}
    after = _embeddings_of(site, exact)
    assert after.keys() == before.keys()
    assert all(np.array_equal(after[k], before[k]) for k in before)
    stored = site.registry.get_model(worse.manifest.sha256)
    assert stored.metrics["evaluation"]["new"][SITE_BENCHMARK]["far"] == pytest.approx(
        evaluation["new"][SITE_BENCHMARK]["far"]
    )


def test_better_candidate_is_promoted_with_galleries_re_embedded(
    site: Site, models: dict[str, Any]
) -> None:
    lenient, better = models["lenient"], models["other"]
    promote(site.registry, lenient, "a lenient model, accepting everyone")
    assert site.registry.active_model().sha256 == lenient.manifest.sha256
    split = site_split(site.registry, 0.3, site.model.manifest.align_spec)
    evaluation = evaluate_models({"old": lenient, "new": better}, split, None, site.config)

    version = judge_candidate(site.registry, better, evaluation, far_weight=10.0)

    assert version.active and version.status == "active"
    assert "not worse on site_heldout" in version.why
    stored = _embeddings_of(site, better)
    expected = _expected(site, better)
    assert stored.keys() == expected.keys() == set(_embeddings_of(site, lenient))
    assert all(np.allclose(stored[k], expected[k], atol=1e-5) for k in expected)
    # A different tower: the galleries really were embedded anew, not copied.
    old = _embeddings_of(site, lenient)
    assert not any(np.allclose(stored[k], old[k]) for k in stored)
    matrix = site.registry.gallery_matrix(better.manifest.sha256)
    assert matrix.vectors.shape[0] == len(expected)


def test_rollback_restores_previous_model_and_embeddings(
    site: Site, models: dict[str, Any]
) -> None:
    exact, other = models["exact"], models["other"]
    before = _embeddings_of(site, exact)
    promote(site.registry, other, "test promotion")
    enroll_people(
        Site(site.config, site.registry, other, site.pipeline, site.lfw_images), PEOPLE[3:], 4
    )
    new_ids = {i.id for i in site.registry.all_gallery_images()} - set(before)
    assert len(new_ids) == 4

    version = rollback(site.registry, "test rollback")

    assert version.sha256 == exact.manifest.sha256 and version.active
    assert site.registry.get_model(other.manifest.sha256).status == "rolled_back"
    after = _embeddings_of(site, exact)
    assert all(np.array_equal(after[k], before[k]) for k in before)
    # Images enrolled under the newer model were embedded by the restored one before the switch.
    assert set(after) == set(before) | new_ids
    assert site.registry.images_without_embedding(exact.manifest.sha256) == []


def test_rollback_without_earlier_model_fails_cleanly(site: Site) -> None:
    with pytest.raises(StorageError, match="no earlier model"):
        rollback(site.registry, "nothing to go back to")


def test_tampered_model_is_never_activated(
    site: Site, models: dict[str, Any], model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "tampered"
    shutil.copytree(model_dirs["other"], copy)
    other = models["other"]
    site.registry.register_model(other.manifest.sha256, "tampered copy", copy)
    with (copy / "model.keras").open("ab") as weights:
        weights.write(b"\0")

    with pytest.raises(ModelError, match="does not match"):
        activate(site.registry, other.manifest.sha256, "should not happen")

    assert site.registry.active_model().sha256 == models["exact"].manifest.sha256
    assert _embeddings_of(site, other) == {}
