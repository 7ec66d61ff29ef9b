"""Enrollment from real LFW images with a tiny real model: accepted, rejected, duplicates,
look-alikes, the minimum, gallery additions, and deletion leaving nothing behind."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
from enroll_fixtures import PEOPLE, person_images
from sqlalchemy import text

from facegate.config import FacegateConfig
from facegate.enrollment.embedding import read_model_crop
from facegate.enrollment.enroll import TooFewImagesError, add_images, enroll
from facegate.errors import EnrollmentError
from facegate.face.align import CHIP_SIZE
from facegate.storage.registry import Registry

TABLES_WITH_USER_DATA = ("users", "gallery_images", "embeddings")


def _rows(registry: Registry, table: str) -> int:
    with registry.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def _files(registry: Registry) -> list[Path]:
    root = registry.data_dir / "gallery"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_enroll_several_people_with_bad_images_mixed_in(
    registry: Registry,
    pipeline,
    tiny_model,
    config: FacegateConfig,
    lfw_images: Path,
    bad_images: dict[str, Path],
) -> None:
    sha = tiny_model.manifest.sha256
    for i, person in enumerate(PEOPLE[:3]):
        images = person_images(lfw_images, person, 4)
        sources = [*images, *bad_images.values()] if i == 0 else images
        report = enroll(registry, pipeline, tiny_model, person.replace("_", " "), sources, config)
        assert report.stored and len(report.accepted) == 4, report
        assert report.lookalikes == ()  # three different people
        if i == 0:
            reasons = {Path(r.source).name: r.reason for r in report.rejected}
            assert reasons["notes.jpg"] == "unreadable_image"
            assert reasons["wall.png"] == "no_face"
            assert reasons["tiny.png"] in ("no_face", "face_too_small", "too_blurred")
            assert len(reasons) == 3

    users = registry.list_users()
    assert sorted(u.name for u in users) == ["Colin Powell", "Serena Williams", "Tony Blair"]
    assert all(u.image_count == 4 for u in users)
    matrix = registry.gallery_matrix(sha)
    assert matrix.vectors.shape == (12, tiny_model.manifest.embedding_dim)
    assert registry.active_model().sha256 == sha  # the first model used becomes active

    gallery = registry.gallery("Colin Powell")
    assert {g.source for g in gallery} == {p.name for p in person_images(lfw_images, PEOPLE[0], 4)}
    for image in gallery:
        path = registry.data_dir / image.path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert "Colin" not in image.path
        chip = registry.read_crop(image)
        assert chip.shape == (CHIP_SIZE, CHIP_SIZE, 3) and chip.dtype == np.uint8
        assert image.landmarks is not None and len(image.landmarks) == 6
        # The crop re-derived from the stored chip embeds to the stored vector (taken from the
        # photo's own crop) up to the resampling of a second warp.
        crop = read_model_crop(registry, image, tiny_model.manifest.align_spec)
        assert crop.shape == (64, 64, 3)
        again = tiny_model.embed(crop[None])[0]
        np.testing.assert_allclose(again, registry.get_embeddings(sha)[image.id], atol=0.02)


def test_near_identical_images_are_dropped(
    registry: Registry,
    pipeline,
    tiny_model,
    config: FacegateConfig,
    lfw_images: Path,
    tmp_path: Path,
) -> None:
    images = person_images(lfw_images, PEOPLE[1], 3)
    copy = tmp_path / "copy_of_first.jpg"
    copy.write_bytes(images[0].read_bytes())  # same content: same crop hash
    recoded = tmp_path / "recoded_second.png"
    cv2.imwrite(str(recoded), cv2.imread(str(images[1])))  # lossless copy, other format
    resaved = tmp_path / "resaved_third.jpg"  # lossy copy: another crop, nearly the same
    cv2.imwrite(str(resaved), cv2.imread(str(images[2])), [cv2.IMWRITE_JPEG_QUALITY, 90])
    sources = [*images, copy, recoded, resaved]
    report = enroll(registry, pipeline, tiny_model, "Tony", sources, config)
    assert report.stored and len(report.accepted) == 3
    dropped = {Path(d.source).name: d for d in report.duplicates}
    assert set(dropped) in (
        {"copy_of_first.jpg", "recoded_second.png", "resaved_third.jpg"},
        {"copy_of_first.jpg", "recoded_second.png", images[2].name},  # the copy scored higher
    )
    assert dropped["copy_of_first.jpg"].similarity == 1.0  # same content hash
    near = dropped.get("resaved_third.jpg") or dropped[images[2].name]
    assert config.enrollment.duplicate_similarity <= near.similarity < 1.0  # by embedding
    assert len(registry.gallery("Tony")) == 3


def test_fewer_than_the_minimum_stores_nothing(
    registry: Registry,
    pipeline,
    tiny_model,
    config: FacegateConfig,
    lfw_images: Path,
    bad_images: dict[str, Path],
) -> None:
    sources = [*person_images(lfw_images, PEOPLE[2], 2), *bad_images.values()]
    with pytest.raises(TooFewImagesError, match="2 usable image") as info:
        enroll(registry, pipeline, tiny_model, "Serena", sources, config)
    assert len(info.value.report.accepted) == 2 and len(info.value.report.rejected) == 3
    assert not info.value.report.stored
    for table in TABLES_WITH_USER_DATA:
        assert _rows(registry, table) == 0
    assert _files(registry) == []


def test_a_taken_or_invalid_name_is_refused(
    registry: Registry, pipeline, tiny_model, config: FacegateConfig, lfw_images: Path
) -> None:
    images = person_images(lfw_images, PEOPLE[0], 3)
    enroll(registry, pipeline, tiny_model, "Colin", images, config)
    with pytest.raises(EnrollmentError, match="already exists"):
        enroll(registry, pipeline, tiny_model, " Colin ", images, config)
    with pytest.raises(EnrollmentError, match="invalid name"):
        enroll(registry, pipeline, tiny_model, "bad\nname", images, config)


def test_a_second_enrollment_of_the_same_person_warns_with_the_score(
    registry: Registry,
    pipeline,
    tiny_model,
    config: FacegateConfig,
    lfw_images: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    images = person_images(lfw_images, PEOPLE[0], 4)
    enroll(registry, pipeline, tiny_model, "Colin", images, config)
    enroll(
        registry, pipeline, tiny_model, "Serena", person_images(lfw_images, PEOPLE[2], 4), config
    )
    with caplog.at_level(logging.WARNING):
        report = enroll(registry, pipeline, tiny_model, "Colin again", images[::-1], config)
    assert report.stored
    assert [a.name for a in report.lookalikes] == ["Colin"]
    assert report.lookalikes[0].score > config.enrollment.lookalike_score
    assert "'Colin again'" in caplog.text and "'Colin'" in caplog.text and "score" in caplog.text


def test_directories_are_expanded_and_the_gallery_is_capped(
    registry: Registry,
    pipeline,
    tiny_model,
    config: FacegateConfig,
    lfw_images: Path,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "gerhard" / "nested"
    folder.mkdir(parents=True)
    for src in person_images(lfw_images, PEOPLE[3], 8):
        (folder / src.name).write_bytes(src.read_bytes())
    (folder / "readme.txt").write_text("not an image suffix: skipped, not rejected")
    capped = config.model_copy(
        update={"enrollment": config.enrollment.model_copy(update={"max_gallery": 5})}
    )
    report = enroll(registry, pipeline, tiny_model, "Gerhard", [tmp_path / "gerhard"], capped)
    assert len(report.accepted) == 5 and len(report.accepted) + len(report.capped) == 8
    assert report.rejected == ()
    kept = [g.quality for g in registry.gallery("Gerhard")]
    left_out = [pipeline.process_file(p).face.quality.score for p in report.capped]
    assert min(kept) >= max(left_out)  # the best five were kept


def test_gallery_add_deduplicates_against_the_existing_gallery(
    registry: Registry,
    pipeline,
    tiny_model,
    config: FacegateConfig,
    lfw_images: Path,
) -> None:
    first = person_images(lfw_images, PEOPLE[1], 3)
    enroll(registry, pipeline, tiny_model, "Tony", first, config)
    more = person_images(lfw_images, PEOPLE[1], 2, start=3)
    report = add_images(registry, pipeline, tiny_model, "Tony", [first[0], *more], config)
    assert report.stored and len(report.accepted) == 2
    assert [d.duplicate_of for d in report.duplicates] == ["(existing gallery)"]
    assert len(registry.gallery("Tony")) == 5
    with pytest.raises(TooFewImagesError):
        add_images(registry, pipeline, tiny_model, "Tony", [first[1]], config)


def test_deleting_an_enrolled_user_leaves_no_file_or_row(
    registry: Registry,
    pipeline,
    tiny_model,
    config: FacegateConfig,
    lfw_images: Path,
) -> None:
    enroll(registry, pipeline, tiny_model, "Colin", person_images(lfw_images, PEOPLE[0], 4), config)
    assert len(_files(registry)) == 4
    registry.delete_user("Colin")
    for table in TABLES_WITH_USER_DATA:
        assert _rows(registry, table) == 0
    assert _files(registry) == []
