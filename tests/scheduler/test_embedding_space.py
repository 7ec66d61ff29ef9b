"""Embedding spaces: one model directory served on TensorFlow and on LiteRT (its int8 export)
stores two sets of gallery embeddings in one registry; each load reads only its own, switching
runtime re-embeds instead of mixing, and promotion and rollback keep the LiteRT space."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scheduler_support import PEOPLE, Site, enroll_people, site_config

from facegate.config import FacegateConfig


@dataclass
class SharedRegistry:
    """A site enrolled on TensorFlow whose model directory also has an int8 LiteRT export."""

    site: Site
    tf_config: FacegateConfig
    auto_config: FacegateConfig  # a second door on the same registry, runtime "auto"
    tf: Any
    lite: Any


def _with_runtime(config: FacegateConfig, runtime: str) -> FacegateConfig:
    data = config.model_dump()
    data["model"]["runtime"] = runtime
    return FacegateConfig.model_validate(data)


@pytest.fixture
def shared(
    tmp_path: Path, model_dirs: dict[str, Path], pipeline: Any, lfw_images: Path
) -> Iterator[SharedRegistry]:
    from facegate.model.bundle import load_model_dir
    from facegate.model.export import export_tflite
    from facegate.storage.registry import open_registry

    model_dir = tmp_path / "exact-export"
    shutil.copytree(model_dirs["exact"], model_dir)
    export_tflite(load_model_dir(model_dir), model_dir, "int8")  # dynamic range: quick
    config = site_config(tmp_path, model_dir)
    tf_config = _with_runtime(config, "tensorflow")
    registry = open_registry(config.storage)
    tf = load_model_dir(model_dir, "tensorflow")
    site = Site(tf_config, registry, tf, pipeline, lfw_images)
    try:
        enroll_people(site, PEOPLE[:2], 3)
        lite = load_model_dir(model_dir, "auto")
        yield SharedRegistry(site, tf_config, _with_runtime(config, "auto"), tf, lite)
    finally:
        registry.close()


def _crops(site: Site, model: Any, image_ids: np.ndarray) -> np.ndarray:
    from facegate.enrollment.embedding import read_model_crop

    images = {image.id: image for image in site.registry.all_gallery_images()}
    spec = model.manifest.align_spec
    return np.stack([read_model_crop(site.registry, images[int(i)], spec) for i in image_ids])


def test_each_runtime_reads_only_its_own_embeddings(shared: SharedRegistry) -> None:
    from facegate.daemon.app import build_verifier
    from facegate.doctor import check_galleries

    registry, tf, lite = shared.site.registry, shared.tf, shared.lite
    assert lite.runtime == "litert" and lite.manifest.sha256 == tf.manifest.sha256
    assert lite.space != tf.space
    tf_before = registry.get_embeddings(tf.space)
    assert len(tf_before) == 6
    # Same model version, other runtime: none of the TensorFlow embeddings is offered to it.
    assert len(registry.gallery_matrix(lite.space).vectors) == 0
    assert len(registry.images_without_embedding(lite.space)) == 6
    assert check_galleries(registry, lite).status == "warn"

    verifier = build_verifier(registry, shared.auto_config)  # the door switched to "auto"

    assert verifier.model.runtime == "litert" and verifier.model.space == lite.space
    matrix = registry.gallery_matrix(lite.space)
    assert len(matrix.vectors) == 6 and matrix.model_sha256 == lite.space
    # Re-embedded by the LiteRT tower, not copied from the TensorFlow rows (int8 differs).
    crops = _crops(shared.site, lite, matrix.image_ids)
    np.testing.assert_allclose(lite.embed(crops), matrix.vectors, atol=1e-6)
    tf_rows = np.stack([tf_before[int(i)] for i in matrix.image_ids])
    assert not np.allclose(tf_rows, matrix.vectors, atol=1e-6)
    assert check_galleries(registry, lite).status == "ok"
    with pytest.raises(ValueError, match="embedding space"):
        verifier.load_gallery(registry.gallery_matrix(tf.space))

    # The TensorFlow door on the same registry keeps and reads its own set, untouched.
    tf_verifier = build_verifier(registry, shared.tf_config)
    assert tf_verifier.model.space == tf.space
    tf_after = registry.get_embeddings(tf.space)
    assert set(tf_after) == set(tf_before)
    assert all(np.array_equal(tf_after[k], tf_before[k]) for k in tf_before)
    assert registry.gallery_stamp(tf.space) != registry.gallery_stamp(lite.space)


def test_enrolling_on_one_runtime_leaves_the_other_to_embed(shared: SharedRegistry) -> None:
    from facegate.enrollment.embedding import OnUnreadable, embed_missing

    registry, tf, lite = shared.site.registry, shared.tf, shared.lite
    embed_missing(registry, lite, OnUnreadable.FAIL)
    lite_site = Site(
        shared.auto_config, registry, lite, shared.site.pipeline, shared.site.lfw_images
    )
    enroll_people(lite_site, PEOPLE[2:3], 3)
    # Enrolled on LiteRT: stored in its space only; the TensorFlow door embeds them itself.
    assert len(registry.get_embeddings(lite.space)) == 9
    assert len(registry.images_without_embedding(tf.space)) == 3
    done = embed_missing(registry, tf, OnUnreadable.FAIL)
    assert len(done.vectors) == 3
    assert len(registry.get_embeddings(tf.space)) == 9


def test_promotion_and_rollback_keep_the_litert_space(
    shared: SharedRegistry, models: dict[str, Any]
) -> None:
    from facegate.enrollment.embedding import OnUnreadable, embed_missing
    from facegate.scheduler.promote import promote, rollback

    registry, lite = shared.site.registry, shared.lite
    embed_missing(registry, lite, OnUnreadable.FAIL)
    before = registry.get_embeddings(lite.space)
    other = models["other"]  # no LiteRT export: runs on TensorFlow under "auto"
    promote(registry, other, "test promotion")
    newer = Site(shared.tf_config, registry, other, shared.site.pipeline, shared.site.lfw_images)
    enroll_people(newer, PEOPLE[2:3], 3)
    # The retired model's LiteRT embeddings are not dropped as stale.
    assert set(registry.get_embeddings(lite.space)) == set(before)

    version = rollback(registry, "test rollback", "auto")

    assert version.sha256 == lite.manifest.sha256 and version.active
    after = registry.get_embeddings(lite.space)
    assert all(np.array_equal(after[k], before[k]) for k in before)
    # Only the images enrolled meanwhile were embedded, on the runtime "auto" serves (LiteRT).
    assert len(after) == len(before) + 3
    assert registry.images_without_embedding(lite.space) == []
