"""Gallery refresh: diversity sampling, the per-user plan, and refreshes of a real site
(re-embedding, duplicates, the quality gate, the cap, consented self-update from captures)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from scheduler_support import PEOPLE, Site, person_images

from facegate.config import FacegateConfig
from facegate.enrollment.embedding import model_crop, read_model_crop
from facegate.scheduler.gallery import farthest_point_order, plan_user, refresh_galleries
from facegate.scheduler.promote import promote
from facegate.storage.files import encode_crop
from facegate.storage.records import GalleryImage, NewGalleryImage


def _with(config: FacegateConfig, section: str, **values: Any) -> FacegateConfig:
    data = config.model_dump()
    data[section].update(values)
    return FacegateConfig.model_validate(data)


def test_farthest_point_order_spans_the_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(4, dtype=np.float32)[:3] * 10
    # Ten near-copies of the first pose, one image each of two other poses.
    vectors = np.concatenate(
        [centres[0] + rng.normal(0, 0.01, (10, 4)), centres[1:] + rng.normal(0, 0.01, (2, 4))]
    )
    chosen = farthest_point_order(vectors, 3, first=0)
    assert sorted(chosen)[0] == 0 and set(chosen[1:]) == {10, 11}
    assert farthest_point_order(vectors, 20) == list(range(12))


def _image(image_id: int, quality: float) -> GalleryImage:
    return GalleryImage(image_id, 1, f"{image_id:064x}", "p", quality, "s", datetime.now(UTC))


def test_plan_drops_duplicates_then_poor_crops_but_keeps_min_images() -> None:
    config = FacegateConfig(enrollment={"min_images": 3, "duplicate_similarity": 0.99})
    vectors = np.array(
        [[1, 0, 0], [1, 0.001, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32
    )
    images = [_image(i + 1, q) for i, q in enumerate([0.9, 0.5, 0.8, 0.7, 0.6])]
    gate = [None, None, "too_dark", "too_blurred", None]
    plan = plan_user(images, vectors, gate, config)
    assert plan.drop_duplicate == [2]  # the lower-quality copy of image 1
    # Images 1 and 5 pass; the best failing one (3) is kept to stay at three images.
    assert plan.kept_below_gate == [3]
    assert plan.drop_quality == [4]
    assert plan.drop_cap == []


def test_plan_caps_keeping_the_most_diverse() -> None:
    config = FacegateConfig(enrollment={"max_gallery": 2, "duplicate_similarity": 0.999999})
    vectors = np.array([[1, 0], [0.99, 0.14], [0, 1]], dtype=np.float32)
    images = [_image(1, 0.9), _image(2, 0.8), _image(3, 0.1)]
    plan = plan_user(images, vectors, [None, None, None], config)
    assert plan.drop_cap == [2]  # close to image 1; the low-quality image 3 adds a new pose


def _stored(site: Site, sha: str) -> dict[int, np.ndarray]:
    return site.registry.get_embeddings(sha)


def test_refresh_re_embeds_and_cleans_a_real_site(site: Site) -> None:
    registry, model = site.registry, site.model
    sha = model.manifest.sha256
    name = PEOPLE[0].split("_")[-1].lower()
    first_image = registry.gallery(name)[0]
    base = registry.read_crop(first_image)
    landmarks = np.array(first_image.landmarks)
    near_copy = base.copy()
    near_copy[0, 0, 0] ^= 1  # one pixel: another file, the same face
    dark = (base * 0.15).astype(np.uint8)
    spec = model.manifest.align_spec
    extra = [
        NewGalleryImage(
            encode_crop(c).sha256,
            encode_crop(c).png,
            q,
            src,
            model.embed(model_crop(c, first_image.landmarks, spec)[None])[0],
            landmarks,
        )
        for c, q, src in ((near_copy, 0.1, "copy.png"), (dark, 0.05, "dark.png"))
    ]
    added = registry.add_gallery_images(name, extra, sha)
    # Stale vectors (say, from an interrupted write) are replaced by the refresh.
    first = registry.all_gallery_images()[0]
    registry.put_embeddings(sha, {first.id: np.zeros(16, np.float32) + 1.0})
    config = _with(site.config, "enrollment", max_gallery=4)

    report = refresh_galleries(registry, model, config)

    assert report.duplicates == (added[0].id,)
    assert report.poor_quality == (added[1].id,)
    assert len(report.capped) == 3  # three users of five images, capped at four each
    assert report.re_embedded == 17
    images = registry.all_gallery_images()
    assert len(images) == 12
    stored = _stored(site, sha)
    assert set(stored) == {i.id for i in images}
    crops = np.stack([read_model_crop(registry, i, spec) for i in images])
    expected = model.embed(crops)
    assert all(
        np.allclose(stored[i.id], e, atol=1e-5) for i, e in zip(images, expected, strict=True)
    )


def _save_capture(site: Site, frame_path: Path, decision: str, day: datetime) -> str:
    relative = f"captures/{day:%Y-%m-%d}/{decision}.jpg"
    target = Path(site.registry.data_dir) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), cv2.imread(str(frame_path)))
    return relative


def _grant(site: Site, user: str, frame: Path, decision: str, score: float) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    site.registry.log_access(
        door="front_door",
        trigger="motion",
        decision="granted",
        reason="granted",
        decision_id=decision,
        time=now,
        user_id=site.registry.get_user(user).id,
        candidate=user,
        score=score,
        capture_path=_save_capture(site, frame, decision, now),
    )


@pytest.fixture
def captures(site: Site) -> dict[str, Path]:
    """Unenrolled LFW images of the first two people (the sixth image of each)."""
    return {
        person.split("_")[-1].lower(): person_images(site.lfw_images, person, 1, start=5)[0]
        for person in PEOPLE[:2]
    }


def test_self_update_needs_consent_and_a_clear_score(
    site: Site, models: dict[str, Any], captures: dict[str, Path]
) -> None:
    # The lenient model verifies every face, so only consent and the score decide here.
    lenient = models["lenient"]
    promote(site.registry, lenient, "test")
    powell, blair = captures
    site.registry.update_user(powell, gallery_consent=True)
    _grant(site, powell, captures[powell], "d-confident", 0.99)
    _grant(site, powell, captures[powell], "d-borderline", 0.93)  # < 0.9 + 0.05
    _grant(site, blair, captures[blair], "d-no-consent", 0.99)
    config = _with(site.config, "scheduler", gallery_self_update=True)

    report = refresh_galleries(site.registry, lenient, config, lambda: site.pipeline)

    assert len(report.added_from_captures) == 1
    sources = [i.source for i in site.registry.gallery(powell)]
    assert sources.count("capture:d-confident") == 1
    assert not any("capture:" in i.source for i in site.registry.gallery(blair))
    assert not any("borderline" in s for s in sources)


def test_self_update_off_by_default_and_never_teaches_an_unverified_face(
    site: Site, captures: dict[str, Path]
) -> None:
    powell = next(iter(captures))
    site.registry.update_user(powell, gallery_consent=True)
    _grant(site, powell, captures[powell], "d-1", 0.99)
    before = len(site.registry.gallery(powell))
    refresh_galleries(site.registry, site.model, site.config, lambda: site.pipeline)
    assert len(site.registry.gallery(powell)) == before  # off by default
    # The exact model does not verify this other photo against the gallery: not added,
    # whatever score the access log claims.
    config = _with(site.config, "scheduler", gallery_self_update=True)
    report = refresh_galleries(site.registry, site.model, config, lambda: site.pipeline)
    assert report.added_from_captures == ()
    assert len(site.registry.gallery(powell)) == before


def test_refresh_keeps_min_images_when_the_gate_is_raised(site: Site) -> None:
    strict = _with(site.config, "face", min_sharpness=1e6)
    report = refresh_galleries(site.registry, site.model, strict)
    assert len(report.poor_quality) == 3 * 2  # five per user, three kept (min_images)
    assert len(report.kept_below_gate) == 3 * 3
    assert len(report.warnings) == 3
    for user in site.registry.list_users():
        assert user.image_count == 3
    assert replace(report, warnings=()).summary().startswith("re-embedded 15")
