"""Gallery refresh: re-embed with the active model, drop duplicates and crops that now fail
the quality gate, cap each gallery keeping its most diverse images, and (optionally, with the
user's consent) add recent confident granted captures.

Everything is computed first and applied after, so a failure while computing changes nothing.
A gallery is never shrunk below ``enrollment.min_images`` by this job: a user must not be
locked out because the quality thresholds were raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facegate.config import FacegateConfig
from facegate.enrollment.embedding import OnUnreadable, embed_gallery
from facegate.errors import StorageError
from facegate.storage.records import GalleryImage, NewGalleryImage
from facegate.storage.registry import Registry

if TYPE_CHECKING:
    from facegate.model.bundle import LoadedModel

logger = logging.getLogger(__name__)

CAPTURE_SOURCE = "capture:"


@dataclass(frozen=True)
class RefreshReport:
    """What a gallery refresh did: image ids re-embedded, dropped (by cause) and added."""

    model_sha256: str
    re_embedded: int = 0
    duplicates: tuple[int, ...] = ()
    poor_quality: tuple[int, ...] = ()
    capped: tuple[int, ...] = ()
    kept_below_gate: tuple[int, ...] = ()
    added_from_captures: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def removed(self) -> int:
        """How many images left the galleries."""
        return len(self.duplicates) + len(self.poor_quality) + len(self.capped)

    def summary(self) -> str:
        """One line for the job log."""
        return (
            f"re-embedded {self.re_embedded} with {self.model_sha256[:12]}; removed "
            f"{len(self.duplicates)} duplicates, {len(self.poor_quality)} poor, "
            f"{len(self.capped)} over the cap; added {len(self.added_from_captures)} captures"
        )


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(N, D) rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def farthest_point_order(vectors: np.ndarray, keep: int, first: int = 0) -> list[int]:
    """Indices of ``keep`` rows of (N, D) ``vectors`` chosen by farthest-point sampling.

    Starts from row ``first``; each next row is the one whose cosine distance to its nearest
    chosen row is largest, so the kept set spans the gallery's variety (poses, light).
    """
    n = len(vectors)
    if keep >= n:
        return list(range(n))
    unit = unit_rows(vectors)
    chosen = [first]
    nearest = 1.0 - unit @ unit[first]
    nearest[first] = -np.inf
    while len(chosen) < keep:
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, 1.0 - unit @ unit[pick])
        nearest[chosen] = -np.inf
    return chosen


def fails_gate(crop: np.ndarray, config: FacegateConfig) -> str | None:
    """The crop-level quality gate (light, then blur) at today's thresholds; None = passes."""
    from facegate.face.quality import assess

    report = assess(crop)
    face = config.face
    if report.brightness < face.min_brightness:
        return "too_dark"
    if report.brightness > face.max_brightness:
        return "too_bright"
    if report.sharpness < face.min_sharpness:
        return "too_blurred"
    return None


@dataclass
class _UserPlan:
    drop_duplicate: list[int] = field(default_factory=list)
    drop_quality: list[int] = field(default_factory=list)
    drop_cap: list[int] = field(default_factory=list)
    kept_below_gate: list[int] = field(default_factory=list)


def plan_user(
    images: Sequence[GalleryImage],
    vectors: np.ndarray,
    gate: Sequence[str | None],
    config: FacegateConfig,
) -> _UserPlan:
    """Decide which of one user's images go: near-duplicates (the lower quality one), crops
    failing the gate (never below min_images), then the least diverse ones over max_gallery."""
    plan = _UserPlan()
    unit = unit_rows(vectors)
    order = sorted(range(len(images)), key=lambda i: (-images[i].quality, images[i].id))
    kept: list[int] = []
    for i in order:
        if kept and float(np.max(unit[kept] @ unit[i])) >= config.enrollment.duplicate_similarity:
            plan.drop_duplicate.append(images[i].id)
        else:
            kept.append(i)
    passing = [i for i in kept if gate[i] is None]
    failing = [i for i in kept if gate[i] is not None]
    spare = max(0, config.enrollment.min_images - len(passing))
    rescued = failing[:spare]  # best quality first: ``kept`` follows ``order``
    plan.kept_below_gate = [images[i].id for i in rescued]
    plan.drop_quality = [images[i].id for i in failing[spare:]]
    survivors = passing + rescued
    cap = config.enrollment.max_gallery
    if len(survivors) > cap:
        picks = farthest_point_order(unit[survivors], cap, first=0)
        chosen = {survivors[k] for k in picks}
        plan.drop_cap = [images[i].id for i in survivors if i not in chosen]
    return plan


def _capture_candidates(
    registry: Registry,
    model: LoadedModel,
    config: FacegateConfig,
    pipeline_factory: Callable[[], Any],
    now: datetime,
) -> dict[str, list[NewGalleryImage]]:
    """Confident granted captures of consenting users, re-checked against their gallery."""
    from facegate.enrollment.enroll import Candidate, face_from_file
    from facegate.scheduler.calibrate import door_thresholds
    from facegate.storage.files import encode_crop

    thresholds = door_thresholds(config, model.manifest)
    floor = thresholds.detection + config.scheduler.self_update_margin
    if floor >= 1.0:
        logger.info("self-update: no score can clear %.3f; nothing added", floor)
        return {}
    since = now - timedelta(days=config.scheduler.self_update_days)
    consenting = {u.id: u for u in registry.list_users(active_only=True) if u.gallery_consent}
    if not consenting:
        return {}
    records = [
        r
        for r in registry.access_log(limit=10_000, since=since, decision="granted")
        if r.reason == "granted"
        and r.user_id in consenting
        and r.capture_path
        and r.score is not None
        and r.score >= floor
    ]
    if not records:
        return {}
    sha = model.space
    pipeline = pipeline_factory()
    found: dict[str, list[NewGalleryImage]] = {}
    for record in records:
        user = consenting[record.user_id]  # type: ignore[index]
        path = Path(registry.data_dir) / str(record.capture_path)
        face = face_from_file(pipeline, path)
        if not isinstance(face, Candidate):
            logger.debug("capture %s: %s", record.decision_id[:8], face)
            continue
        gallery = registry.gallery(user.name)
        stored = registry.get_embeddings(sha, [g.id for g in gallery])
        if not stored:
            continue
        probe = model.embed(face.crop[None])[0]
        scores = model.head.scores(probe, np.stack(list(stored.values())))
        share = float(np.mean(scores >= thresholds.detection))
        # The capture must verify as this user again, clearly: a frame with two faces or a
        # borderline decision must never teach the gallery someone else's face.
        if float(np.max(scores)) < floor or share < thresholds.verification:
            continue
        encoded = encode_crop(face.chip)
        found.setdefault(user.name, []).append(
            NewGalleryImage(
                sha256=encoded.sha256,
                png=encoded.png,
                quality=float(face.quality),
                source=f"{CAPTURE_SOURCE}{record.decision_id}"[:256],
                embedding=np.asarray(probe, np.float32),
                landmarks=face.landmarks,
            )
        )
    return found


def add_captures(
    registry: Registry,
    model: LoadedModel,
    config: FacegateConfig,
    pipeline_factory: Callable[[], Any],
    now: datetime | None = None,
) -> list[int]:
    """Add qualifying captures (see module doc) to consenting users' galleries; image ids."""
    found = _capture_candidates(registry, model, config, pipeline_factory, now or datetime.now(UTC))
    added: list[int] = []
    for name, images in found.items():
        # Near-duplicates of existing images are removed by the refresh right after.
        added.extend(i.id for i in registry.add_gallery_images(name, images, model.space))
    if added:
        logger.info("self-update added %d captures to consenting users' galleries", len(added))
    return added


def refresh_galleries(
    registry: Registry,
    model: LoadedModel,
    config: FacegateConfig,
    pipeline_factory: Callable[[], Any] | None = None,
    now: datetime | None = None,
) -> RefreshReport:
    """Run the gallery refresh with ``model`` (the active one); see the module doc.

    ``pipeline_factory`` builds a face pipeline for the self-update (only called when
    ``scheduler.gallery_self_update`` is on and a capture qualifies).
    """
    sha = model.space
    added: list[int] = []
    if config.scheduler.gallery_self_update and pipeline_factory is not None:
        added = add_captures(registry, model, config, pipeline_factory, now)
    images = registry.all_gallery_images()
    # The gate judges each image as this model sees it: its crop re-derived for the model.
    embedded = embed_gallery(
        registry, model, images, OnUnreadable.FAIL, check=lambda crop: fails_gate(crop, config)
    )
    vectors = embedded.vectors
    by_user: dict[int, list[GalleryImage]] = {}
    for image in images:
        by_user.setdefault(image.user_id, []).append(image)
    plans: dict[int, _UserPlan] = {}
    for user_id, own in by_user.items():
        gate = [embedded.checks[i.id] for i in own]
        plans[user_id] = plan_user(own, np.stack([vectors[i.id] for i in own]), gate, config)

    registry.put_embeddings(sha, vectors)
    names = {u.id: u.name for u in registry.list_users()}
    warnings: list[str] = []
    for user_id, plan in plans.items():
        for image_id in plan.drop_duplicate + plan.drop_quality + plan.drop_cap:
            try:
                registry.remove_gallery_image(names[user_id], image_id)
            except (KeyError, StorageError) as err:  # deleted meanwhile by an operator
                logger.warning("gallery refresh: image %d: %s", image_id, err)
        if plan.kept_below_gate:
            warning = (
                f"user {names.get(user_id, user_id)!r}: {len(plan.kept_below_gate)} images fail "
                "the quality gate but are kept to stay at min_images; re-enroll them"
            )
            logger.warning("%s", warning)
            warnings.append(warning)
    report = RefreshReport(
        model_sha256=model.manifest.sha256,
        re_embedded=len(vectors),
        duplicates=tuple(i for p in plans.values() for i in p.drop_duplicate),
        poor_quality=tuple(i for p in plans.values() for i in p.drop_quality),
        capped=tuple(i for p in plans.values() for i in p.drop_cap),
        kept_below_gate=tuple(i for p in plans.values() for i in p.kept_below_gate),
        added_from_captures=tuple(i for i in added if i not in _removed(plans)),
        warnings=tuple(warnings),
    )
    logger.info("gallery refresh: %s", report.summary())
    return report


def _removed(plans: dict[int, _UserPlan]) -> set[int]:
    return {i for p in plans.values() for i in p.drop_duplicate + p.drop_quality + p.drop_cap}
