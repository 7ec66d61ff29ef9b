"""Gallery embedding: crops re-derived from the stored chips match the photo's own crops for
any template; the unreadable-file policies (skip and count, fail); legacy crops resized with
one warning."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from enroll_fixtures import PEOPLE, person_images

from facegate.config import FacegateConfig
from facegate.enrollment.embedding import (
    OnUnreadable,
    embed_gallery,
    embed_missing,
    fit_crop,
    model_crop,
)
from facegate.enrollment.enroll import enroll
from facegate.errors import StorageError
from facegate.face.align import (
    CHIP_SIZE,
    CHIP_TEMPLATE,
    DEFAULT_TEMPLATE,
    align_face,
    canonical_chip,
    default_spec,
)
from facegate.face.image_io import load_image
from facegate.face.types import AlignSpec
from facegate.storage.files import encode_crop
from facegate.storage.records import NewGalleryImage
from facegate.storage.registry import Registry

# The templates of the models in use: the packaged dlib port (150 px), compact (112 px) and
# the seed (100 px) on the default template, and the enrollment tests' tiny model (64 px).
DLIB_SPEC = AlignSpec(150, ((0.3128, 0.3101), (0.6833, 0.3144), (0.4957, 0.5404), (0.4958, 0.7214)))
SPECS = (DLIB_SPEC, default_spec(112), default_spec(100), default_spec(64))


def test_crops_re_derived_from_the_chip_match_the_photo_crops(pipeline, lfw_images: Path) -> None:
    seen = 0
    for person in PEOPLE:
        for path in person_images(lfw_images, person, 2):
            rgb = load_image(path)
            result = pipeline.process(rgb)
            assert result.face is not None, path
            landmarks = result.face.detection.landmarks
            chip, on_chip = canonical_chip(rgb, landmarks)
            assert chip.shape == (CHIP_SIZE, CHIP_SIZE, 3) and on_chip.shape == (6, 2)
            # The fitted points land near the chip's template (a least-squares fit).
            template = np.asarray(CHIP_TEMPLATE) * CHIP_SIZE
            assert np.abs(on_chip[:4] - template).max() < 12.0
            for spec in SPECS:
                direct = align_face(rgb, landmarks, spec).astype(np.float64)
                again = model_crop(chip, tuple(map(tuple, on_chip)), spec)
                # Two warps instead of one: within half a level on average (0.36 measured
                # on 40 LFW faces). At 64 px the photo's own crop aliases (align_face area-
                # filters only below half scale) and the chip's does not: 1.7 on average,
                # up to 4.2 measured.
                limit = 1.0 if spec.size >= 100 else 6.0
                assert np.abs(again - direct).mean() < limit, (path.name, spec.size)
                if spec is DLIB_SPEC:
                    # What the resize of another model's crop gave: far off.
                    resized = fit_crop(align_face(rgb, landmarks, default_spec(112)), spec.size)
                    assert np.abs(resized - direct).mean() > 10.0
            seen += 1
    assert seen == 2 * len(PEOPLE)


def _enrolled(registry: Registry, pipeline, model, config: FacegateConfig, lfw: Path) -> list:
    enroll(registry, pipeline, model, "ann", person_images(lfw, PEOPLE[0], 4), config)
    return registry.gallery("ann")


@pytest.mark.parametrize("policy", list(OnUnreadable))
def test_an_unreadable_file_is_skipped_and_counted_or_fails(
    policy: OnUnreadable,
    registry: Registry,
    pipeline,
    tiny_model,
    config: FacegateConfig,
    lfw_images: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sha = tiny_model.manifest.sha256
    images = _enrolled(registry, pipeline, tiny_model, config, lfw_images)
    assert not any(image.legacy for image in images)
    before = registry.get_embeddings(sha)
    registry.delete_embeddings(sha)
    broken = images[1]
    (registry.data_dir / broken.path).write_bytes(b"not a PNG any more")

    if policy is OnUnreadable.FAIL:
        with pytest.raises(StorageError, match=f"gallery image {broken.id} .*unreadable"):
            embed_missing(registry, tiny_model, policy)
        assert registry.get_embeddings(sha) == {}  # one batch: nothing was stored
        return
    with caplog.at_level(logging.ERROR, logger="facegate.enrollment.embedding"):
        done = embed_missing(registry, tiny_model, policy)
    assert done.unreadable == (broken.id,)
    assert set(done.vectors) == {i.id for i in images} - {broken.id}
    assert any(f"gallery image {broken.id}" in r.getMessage() for r in caplog.records)
    stored = registry.get_embeddings(sha)
    assert set(stored) == set(done.vectors)
    # Re-derived from the chips: the enrolment's vectors (from the photos' crops) again.
    for image_id, vector in stored.items():
        np.testing.assert_allclose(vector, before[image_id], atol=0.02)
    # A second pass finds only the unreadable image missing, and leaves it so.
    assert embed_missing(registry, tiny_model, policy).unreadable == (broken.id,)


def test_legacy_crops_are_resized_with_one_warning(
    registry: Registry,
    pipeline,
    tiny_model,
    lfw_images: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    crops = []
    for path in person_images(lfw_images, PEOPLE[1], 3):
        result = pipeline.process(load_image(path))
        assert result.face is not None
        crops.append(
            align_face(load_image(path), result.face.detection.landmarks, default_spec(48))
        )
    legacy = [
        NewGalleryImage(encode_crop(c).sha256, encode_crop(c).png, 0.5, f"{k}.png", np.ones(4))
        for k, c in enumerate(crops)
    ]
    registry.create_user_with_gallery("bob", legacy, "f" * 64)
    images = registry.gallery("bob")
    assert all(i.legacy for i in images)

    with caplog.at_level(logging.WARNING, logger="facegate.enrollment.embedding"):
        done = embed_gallery(registry, tiny_model, images)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "re-enroll" in warnings[0].getMessage()
    assert done.legacy == tuple(i.id for i in images)
    expected = tiny_model.embed(np.stack([fit_crop(c, 64) for c in crops]))
    np.testing.assert_allclose(np.stack([done.vectors[i.id] for i in images]), expected, atol=1e-5)
    assert tiny_model.manifest.align_spec.template == DEFAULT_TEMPLATE


def test_doctor_flags_legacy_crops(registry: Registry, tiny_model) -> None:
    from facegate.doctor import check_galleries
    from facegate.enrollment.views import image_view

    sha = tiny_model.manifest.sha256
    crops = np.random.default_rng(5).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    vectors = tiny_model.embed(crops)
    legacy = [
        NewGalleryImage(encode_crop(c).sha256, encode_crop(c).png, 0.5, f"{k}.png", v)
        for k, (c, v) in enumerate(zip(crops, vectors, strict=True))
    ]
    registry.create_user_with_gallery("carl", legacy, sha)
    result = check_galleries(registry, tiny_model)
    assert result.status == "warn"
    assert "3 gallery images of 1 users are legacy crops" in result.detail
    assert "facegate gallery add" in result.fix
    assert image_view(registry.gallery("carl")[0])["legacy_crop"] is True
